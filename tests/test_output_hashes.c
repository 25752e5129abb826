/*
** test_output_hashes.c - the exact bytes modelq writes, pinned: the SHA-256 of every output file
** (GGUF, and each file of a bitsandbytes folder) and of the CLI's stdout, for the tiny models to
** every type. The digests were recorded on the code BEFORE the per-tensor source/transform
** refactor (issue 13), so this proves the refactor changed no byte; any later change of output
** bytes must update them on purpose.
**
** Inputs: tiny-llama (Q/K rows permuted), tiny-qwen2 (q/k/v biases, tied embeddings), tiny-qwen2's
** weights under a Llama config (q/k biases permuted), the bitsandbytes folders testdata/bnb/nf4-dq
** and testdata/bnb/int8 (read through the bitsandbytes filter, permuted as f32 rows), GGUF files
** modelq wrote (q8_0, q4_K: dequantized, copied, requantized), a GPT-2 Conv1D checkpoint (read
** transposed for bitsandbytes) and a file with odd and long rows (cut into pieces with a small
** MODELQ_CHUNK_ELEMS). The Q/K negative controls (debug_qk_permute 1 and 2) go through the library.
**
** stdout: the "wrote PATH: ... in T s" line (temporary path, time) is dropped; the rest (table,
** totals, --stats) is deterministic.
**
** To print the table after an intended change: MODELQ_PRINT_HASHES=1 ./test_output_hashes.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modelq/convert.h"
#include "run_cmd.h"
#include "sha256.h"
#include "stwrite.h"

struct hcase {
    const char *in;    /* a fixture path, or "@name" for an input this test writes */
    const char *args;  /* convert arguments (type ...) */
    const char *chunk; /* MODELQ_CHUNK_ELEMS, or NULL */
    const char *file_sha, *stdout_sha;
};

#define LLAMA "testdata/tiny-llama"
#define QWEN2 "testdata/tiny-qwen2"
#define BNB_NF4 "testdata/bnb/nf4-dq"
#define BNB_INT8 "testdata/bnb/int8"

static const struct hcase CASES[] = {
    {"testdata/tiny-llama", "--type auto -j 2", NULL, "e4884cd0bf00d758a13255154da7269b24d64d532976ab5c4d3b5104b6b0fca5", "73b7b24f89d5a4cd7ea852030d7a2ecbf6b50155338569b08dd959a93b3016f1"},
    {"testdata/tiny-llama", "--type f32 -j 2", NULL, "f3f3d078b3fcc6e669e0f610af7df86d70d412548a520957307a1a46cfc8b8ab", "81d6b5d6910b1c2798376d9db8959bc6eadba230cc55eee2c5f37822860e9bfa"},
    {"testdata/tiny-llama", "--type f16 -j 2", NULL, "79c8fff0f0545e3badea166e72c5ff28be1d8041f46e98e84cf2066a28b2345b", "8b6fad3745018878d66e0158dd1e795319f33dbc760b994afa72bf978244f220"},
    {"testdata/tiny-llama", "--type bf16 -j 2", NULL, "e4884cd0bf00d758a13255154da7269b24d64d532976ab5c4d3b5104b6b0fca5", "8c4e29bf8ceed98c02121352fe40a50cd028de184092e2d60068dcdb6178721c"},
    {"testdata/tiny-llama", "--type q8_0 -j 2", NULL, "3e5d9cddc2286fb7fa828123bb1d864b001d648d963f6723090c019d86793749", "dc97353c6af3e9239f6a57b864f870454227a185d91a55a48d28e38a499f80e4"},
    {"testdata/tiny-llama", "--type q4_0 -j 2", NULL, "d784b35eb9e93ef56dc1c9e7159bb5aafcce5440f724bafae90ffd2f1ad02bb7", "bf3453042c9526604507acbb0529faca8f0914f47409c1ea2f54c658eead5288"},
    {"testdata/tiny-llama", "--type q4_1 -j 2", NULL, "417693ee34e7f59c906a0ff13c45bcf34d04c4521b2eb405977c6b9f043498d6", "0a3c1b272b9ea713be13abc9cb5be4c13ff5390f1334f1877aeba60f634d1a15"},
    {"testdata/tiny-llama", "--type q5_0 -j 2", NULL, "2edb530e94d54a5ad9ff1242f57433ab13389bef70178a8afa073c45306b3a1d", "ec102f38ba7a2c3790db2864dc033c006eb52c178a6cdddb5e4e764fb9508c3e"},
    {"testdata/tiny-llama", "--type q5_1 -j 2", NULL, "15549c6bede739edf2e7a5a7f169f6d4ef98e297f68b7fa16a4a2a7c9ec27e71", "b482d095f75659bac6d6fb9c0fa995b2b166e0d3e3d6b636f1ad2a361f4e75d1"},
    {"testdata/tiny-llama", "--type iq4_nl -j 2", NULL, "6fc5580ec9de6e59de71f60ad4e5cd536426fb8253227a98f3fcceb7232f484b", "56d88ab1826fbe75ad7d5171d7cd1a1124ecf596019b96d392b7e7532125dd3a"},
    {"testdata/tiny-llama", "--type q4_K -j 2", NULL, "29c58adaf2f72f6973567a7196f93407a8762a231d95c18ad053e69f437f0347", "5b7f6d98941e32f40dc18fb18418512cf876a940a333b8373c42fc9d89cbf7ea"},
    {"testdata/tiny-llama", "--type q4_K_S -j 2", NULL, "7aba32dbb2b7425513dc4986d9d1d1480b98ab5064715d196c14de74ad8e122e", "1ea84a2aecaf574bf55b9db0cf70d5370410525d680d8ae7c984dbef3216f9ac"},
    {"testdata/tiny-llama", "--type q5_K -j 2", NULL, "26c272eac8272149dbfca25bfde18edf40ec9dbaedc025c25f06775b697cc909", "8e2a4da637f6d5436957ddc06e79c31d7b38b134fe903d753d9cc3f340d5df01"},
    {"testdata/tiny-llama", "--type q5_K_S -j 2", NULL, "751c80d47ba145ca96089d3d571edafb02c420293e7d5334072c7639f269901c", "e4681db9b72f05e4bdef59595fa24ed22cbf0fb78b0c0a4948ce62313e5d0910"},
    {"testdata/tiny-llama", "--type q6_K -j 2", NULL, "1d3595f2dc4ec919afefef721132edbbbaaa7e5fdaeef2aabbb6c3575f94609f", "a01ea660764be10b43050cbd56f3d597a47c78e4da728a6b9d8ea7e08a03b0d9"},
    {"testdata/tiny-qwen2", "--type auto -j 2", NULL, "878e415b800617c2946e45f58836bb777933a55e0ef9719f1810af5e8a6e4db2", "2bce14000f5ca8bf4c2a9ba2b4f12780029a4a642db12b8ec4c258dc5e0887d4"},
    {"testdata/tiny-qwen2", "--type f32 -j 2", NULL, "7c4b120ffb37c265fe3c2e8c3cdb4c3edd56a965725ff885fb24001c66aa7bf6", "3d2c6035be93159160ef35d129f448aea91f02cc527d3a361dba36e093ba6a91"},
    {"testdata/tiny-qwen2", "--type f16 -j 2", NULL, "473af095981003b78a4e92d96dec6f3be4b54df5e9bd6a9baf5fade4c28a9680", "7e46faee7a89dd264f4487aa096b8af45ccfaa966bd54fef6dfb672fe8c14932"},
    {"testdata/tiny-qwen2", "--type bf16 -j 2", NULL, "878e415b800617c2946e45f58836bb777933a55e0ef9719f1810af5e8a6e4db2", "7f7012f56a6c2df50834135fc6318fff9d9d18d504d97b27ff5d5bd5a16708c6"},
    {"testdata/tiny-qwen2", "--type q8_0 -j 2", NULL, "1997209937fbf4c47a0471c6fa56ae04ed5f87d07a733b386548438c8b788710", "2f41c3e3908014c574c6f53c48272f2400574004f79e4817ec410baf3b7cc2ca"},
    {"testdata/tiny-qwen2", "--type q4_0 -j 2", NULL, "fe4d18a574c64b8e6e31afb5cdafced2627d85fae10d18364a486455d661b38b", "3b4f2dcbfbface7954742165eb6664730aebe685e6cad8c506603e576f7cff55"},
    {"testdata/tiny-qwen2", "--type q4_1 -j 2", NULL, "f8689670874923b0e393851faa96a1a973f1f0303de9ee31503c1f7df44e15bf", "e23bcd53794ac334ec09d3d0bc69df35b735918bf90116926c3261db188d3a9c"},
    {"testdata/tiny-qwen2", "--type q5_0 -j 2", NULL, "9e5cd772d1fdf46ce6758fb3e4377d6c7ef408c25beeb70bcc2b08e2a46aa01b", "1bb6e42714c3b397320758a92a96763fe11cb8f879d4ac6e37a8ed3e2f64c0e2"},
    {"testdata/tiny-qwen2", "--type q5_1 -j 2", NULL, "d23b9ce5f9be5a8d94b9283dc0570d918ff98a7401e00efe3538318b3221deca", "c760b068bc34cc76cd908059de5d80719735e47aa4297dbdee898f526cc0db76"},
    {"testdata/tiny-qwen2", "--type iq4_nl -j 2", NULL, "d18b9e99fb5ff890e5345b6fca18e051e00a69a9f6151a4780daaa781cfc0f0a", "b8ddb177dce2f8611d19e492533b33fa69d5b52c5707382636d7701ca03b5d88"},
    {"testdata/tiny-qwen2", "--type q4_K -j 2", NULL, "820c5584305c4baee08a848a1d24de68a492b3df7f4d67b33de024df0beaaf84", "42298852b633b7b954e6802ab5d7ae4b2ed68db4c67659deade6c239bde518db"},
    {"testdata/tiny-qwen2", "--type q4_K_S -j 2", NULL, "8d6a5381a304963c54a3e2751ffbd36225111fe41503585ccf90b0c1de10b813", "fc62edc3481667ccaaedf6f0c119006fa583c23628165665661554fbc001f25a"},
    {"testdata/tiny-qwen2", "--type q5_K -j 2", NULL, "20b2a4ef8c39d0b23776f37d548120463aa12053b9e8a0570955feda2e0012db", "9379ac6b2c8cdc7f6651a75c9092dd5ea60fd6299b4510531b99ab57a46cf921"},
    {"testdata/tiny-qwen2", "--type q5_K_S -j 2", NULL, "5c0b13bd98cba488b811ac9d70ae3ab095b7faecaf0722c6afc88aee21d54c74", "c6f5b20272c489286f8e7f546f3f2fbe813c5458ad54121d334c053397a0c70d"},
    {"testdata/tiny-qwen2", "--type q6_K -j 2", NULL, "85378c6b793e32735c533fc3e55e55b3b91018f451822dbf0a41ffdb5832f15a", "97aeeed1fdc52a427bbaa9ec7d7d640b36d5f747990bf15fa976ba6f425d143f"},
    {"@llama-bias", "--type auto -j 2", NULL, "5a943ecfb8d8aea73baf2dd497369176e69d97d6ca00bbd0ebdd654dadb21c5e", "2bce14000f5ca8bf4c2a9ba2b4f12780029a4a642db12b8ec4c258dc5e0887d4"},
    {"@llama-bias", "--type f32 -j 2", NULL, "ba0f910265328adfc3c65d4a4249ba16d38f5f07c777203af8057dd8631852c1", "3d2c6035be93159160ef35d129f448aea91f02cc527d3a361dba36e093ba6a91"},
    {"@llama-bias", "--type f16 -j 2", NULL, "7508a5ab16036634892ac66077a2c05a11938f855ba4cced2dc004d3149a688e", "7e46faee7a89dd264f4487aa096b8af45ccfaa966bd54fef6dfb672fe8c14932"},
    {"@llama-bias", "--type bf16 -j 2", NULL, "5a943ecfb8d8aea73baf2dd497369176e69d97d6ca00bbd0ebdd654dadb21c5e", "7f7012f56a6c2df50834135fc6318fff9d9d18d504d97b27ff5d5bd5a16708c6"},
    {"@llama-bias", "--type q8_0 -j 2", NULL, "fd248349f4a0f2bd9de137f051262bd655161ffefabe49d0bc1dcde8b46d064d", "2f41c3e3908014c574c6f53c48272f2400574004f79e4817ec410baf3b7cc2ca"},
    {"@llama-bias", "--type q4_0 -j 2", NULL, "d87e9d184a1c1aa26ce7de2b237e3752d0c3ebe8e6719c3b9c31fc308dddcf4a", "3b4f2dcbfbface7954742165eb6664730aebe685e6cad8c506603e576f7cff55"},
    {"@llama-bias", "--type q4_1 -j 2", NULL, "8f6ca15311d66fad18b62ad7f2195143a03a677839bca3925b6bd7219de51a8b", "e23bcd53794ac334ec09d3d0bc69df35b735918bf90116926c3261db188d3a9c"},
    {"@llama-bias", "--type q5_0 -j 2", NULL, "3989d01724557b398a387af71df587d056bc4b958d65887b1ec3da830a21e400", "1bb6e42714c3b397320758a92a96763fe11cb8f879d4ac6e37a8ed3e2f64c0e2"},
    {"@llama-bias", "--type q5_1 -j 2", NULL, "8b31a8e5555d3816c05323e417b1b186b76621f092bcdbc79f8b17a35f468acb", "c760b068bc34cc76cd908059de5d80719735e47aa4297dbdee898f526cc0db76"},
    {"@llama-bias", "--type iq4_nl -j 2", NULL, "447ea38cc8a6e5ff71b9d4ecdbe5eb2d8a63eccb997dc4d234c1359d294701c9", "b8ddb177dce2f8611d19e492533b33fa69d5b52c5707382636d7701ca03b5d88"},
    {"@llama-bias", "--type q4_K -j 2", NULL, "026d2357c3bb3a4d54d031d6d6dbdc561fdeea8a87393e1de6e0df5c867f7f3c", "42298852b633b7b954e6802ab5d7ae4b2ed68db4c67659deade6c239bde518db"},
    {"@llama-bias", "--type q4_K_S -j 2", NULL, "3340ed9850cbe9d911bba1ff3f1a875bfba83a7c3830e322c0bbb77a1b3760ab", "fc62edc3481667ccaaedf6f0c119006fa583c23628165665661554fbc001f25a"},
    {"@llama-bias", "--type q5_K -j 2", NULL, "243caa7c29d6f28b658f0327f02260b4e8cb127bb9428f90e278c92eb144b242", "9379ac6b2c8cdc7f6651a75c9092dd5ea60fd6299b4510531b99ab57a46cf921"},
    {"@llama-bias", "--type q5_K_S -j 2", NULL, "6f2bbd73ccf253f24594b59a4e8fde1d96974c1e70c7a19a6eb4ac4618d0f633", "c6f5b20272c489286f8e7f546f3f2fbe813c5458ad54121d334c053397a0c70d"},
    {"@llama-bias", "--type q6_K -j 2", NULL, "9b2313304eeeb3faf44d0e570569d90bb8d9ea469ebef66767345f3680ae4bdf", "97aeeed1fdc52a427bbaa9ec7d7d640b36d5f747990bf15fa976ba6f425d143f"},
    {"testdata/tiny-llama", "--type nf4 -j 2", NULL, "ea0ae18f8c9ce5cdad5cccfa5ac28765169f28af4c4408f64a29ac0f222e84f5", "6cb2c34b8f2c6570d9053ef604b4179a409c7f891d2aa964cac68d2b0dc4e361"},
    {"testdata/tiny-llama", "--type nf4-dq -j 2", NULL, "d08142b6eb1190d09fb79a48928267fe3d489f1d1e1fc5db09916d3e135b4612", "b791bf38947e1039a965b466691a230bf7edc478660f2623dfa87593d06364ad"},
    {"testdata/tiny-llama", "--type fp4 -j 2", NULL, "59a2fe59fc89c011299e39df26bfba4d1094997239762314a06b98df16306462", "a9a77dbc423e55e3448f81cb1d5735328fb2953f94d2ffa48f0cc9b76d9998ab"},
    {"testdata/tiny-llama", "--type int8_row -j 2", NULL, "9689239754af2815f9e235a95ce5136891504f4d5d523aa0d3ee02325c92e1e5", "5adc1f1a69a2b46a575c8eca12089e9ff3400adb00c79cc6b4ea00e0e6008483"},
    {"testdata/tiny-llama", "--type nf4 --blocksize 128 -j 2", NULL, "2bb8d17ebb9e898fcc171cbab16904fe34ddd892406f6ca1e9e657d107be8029", "c75d842e039c85c30cc6670d7480163fb93951040a86e070b0d2b7d7e06b8f79"},
    {"testdata/tiny-llama", "--type fp4 --double-quant --blocksize 256 -j 3", "3000", "e090f5027de77d17744c044201523320dec9c611f680b1355db400a07e2304bd", "d771f9b6d50c5c86218acc0dcb6236d4f20141b514f47490d0b92b766dbfdbe3"},
    {"testdata/tiny-llama", "--type q4_K --stats -j 2", NULL, "29c58adaf2f72f6973567a7196f93407a8762a231d95c18ad053e69f437f0347", "f77d544c76315c68a56599f5ebecd202b587400564decc2ff1319a3dc91f35b0"},
    {"testdata/tiny-llama", "--type nf4 --stats -j 2", NULL, "ea0ae18f8c9ce5cdad5cccfa5ac28765169f28af4c4408f64a29ac0f222e84f5", "58b270f44feb50d90a45aa374229b4b74b72a1941cbdad5af9ba992d2d83bce1"},
    {"testdata/tiny-llama", "--type q4_0 --tensor-type attn_v=q8_0 --keep ffn_up -j 2", NULL, "390915286153423fa8995c623ac03549842c3923d3ea8bf4be6b5c637cd9fd29", "4171f7f89e35eff6341c982f9e75697d909a36d67f954543a141713bef5de549"},
    {"testdata/tiny-qwen2", "--type nf4-dq -j 2", NULL, "140d771fd21aceb9e49dc008fe06a76d0665ae665d8629afec4244b134e0c3d6", "9d502a6c7131674a471bec8bfdd2c0b3c32508a2f45dbd0e3e1420b7be6f7b42"},
    {"testdata/tiny-qwen2", "--type int8_row -j 2", NULL, "dedd5bedc25d0a65e57c9ea008dbfa26abfd28d4f49508985bc7a39a84eeb3e8", "b7215324c585cc9aee9ff68a9ba55fc959faa6133d16805b8743e1ff025155cf"},
    {"testdata/bnb/nf4-dq", "--type auto -j 2", NULL, "f461c060b840bb94e6213f2cf0432e626f0733846f7cdf28e2b15073f31cc0f7", "e9a5ad038d958b8db4048a4f39a19cb76950f3c5027a5d1ed215d3a036173bb8"},
    {"testdata/bnb/nf4-dq", "--type f32 -j 2", NULL, "394817c5c6a6f80cd88855e305773d67df311d15e66956e925a5a653427b18c3", "316f800cfb551a45104816cc8dbfa137e49a46ab5d17168dbdd81b1285ffed22"},
    {"testdata/bnb/nf4-dq", "--type f16 -j 3", "512", "7b2d9aaafe60ec333edafc458b32819320d4e99e9adc4967390fea0ac2bd26b9", "0641dd08961699e4dd7a16f16dccda43ab5774dae7dc7d32e9fcbe9af5ab6c20"},
    {"testdata/bnb/nf4-dq", "--type q8_0 --allow-requantize -j 2", NULL, "d5b41b28c95dd3524523e49fe02852c3c9cd10fae09cff37dff105242f3d140f", "ac698e8abdd4087d944cbfecda8abe36e4754c2649b107f24a0f70861b7d1c63"},
    {"testdata/bnb/nf4-dq", "--type q4_K --allow-requantize -j 2", NULL, "6306f0edf5ba74c0dc4d487810544d510abbee4e66edb5e1f3105aafb87613df", "705ad2e7fcb921760ccedc0164cf3fdccc9bc969d50363338a25caba4b15c0cc"},
    {"testdata/bnb/nf4-dq", "--type nf4 --allow-requantize -j 2", NULL, "ea0ae18f8c9ce5cdad5cccfa5ac28765169f28af4c4408f64a29ac0f222e84f5", "6ceb511ab92b6a7f827d88bbc99339792963955ab0eb684233c8e611a218b718"},
    {"testdata/bnb/int8", "--type auto -j 2", NULL, "39d98e2676acef31f590c2a1179b0dc10f7f80aaae4100906672dc78e019398c", "4ae541e95b78a5cf1bfe4ecc55de36bc1e41fa88f34f022e91db8865f2b0b555"},
    {"testdata/bnb/int8", "--type f32 -j 2", NULL, "acf9850d415f1e12ff7dab4febb5d77aba8a141895cec898c6ddba02870b39f5", "8ebd8a1cc5252ea450db13eae206cc722e17c34289fea75e0564e7d63ad87d06"},
    {"testdata/bnb/int8", "--type q6_K --allow-requantize -j 2", NULL, "fa5d631fc6b49e23f3afdb973e9da8637a372f9a6e527e5be75a770e6edeeeec", "4fd62115a592c9f4c34e9d8d64e3c00d032504f901bf2f85d118f94094f4a92a"},
    {"testdata/bnb/int8", "--type int8_row --allow-requantize -j 2", NULL, "9689239754af2815f9e235a95ce5136891504f4d5d523aa0d3ee02325c92e1e5", "b4dc406dc30112a0d45c8c17bd7022daeac4eb3c15ff517a85dc2102444cd828"},
    {"@q8.gguf", "--type auto -j 2", NULL, "3e5d9cddc2286fb7fa828123bb1d864b001d648d963f6723090c019d86793749", "472c3beaa051d75df66ffbadfd1386da0252375bff4e93e75c58e433f24fe72b"},
    {"@q8.gguf", "--type f32 -j 2", NULL, "bf567e62906ceb8088846f39d08b0e5378646a81a35eda030a6b7cea824e6e45", "1ea961ed856c12750bd8f55fe118e87f3e882b2c03e442fb99e35aa3b7ebef79"},
    {"@q8.gguf", "--type q4_0 --allow-requantize -j 2", NULL, "74a85e314dd82d9752d6c39ddc9dc361d4141cbd9d3ab2f34f373c6f2ab64f0c", "f113d362544c58a6288ec533a02858c0c7d9b09f9661a04e32fe498b6645210f"},
    {"@q4k.gguf", "--type f16 -j 2", NULL, "d17c7f3b2fd256c77eb601b088b2f7ee9f9e04a19dc7e0c54da50c994507f9ee", "718eb1ace77f5e94731fed6381e97ac08169b497ffbcce5987219c8ba53c8613"},
    {"@q4k.gguf", "--type q8_0 --allow-requantize -j 3", "40", "914d514e4a1fbc9085344a267553a814c50959af6234081110d34e7d946795fa", "81ac6387b61ff3ae98fca843b5816f222d8b003241e3248c9c168a6e8dc94f5e"},
    {"@gpt2", "--type nf4 -j 3", "1000", "ce16c61599d5ce9815506b437661acf345b765d65572b826d6ff1a2b6dc62a05", "516c3061c836ed06a9b61e4937d3b7d957f4876e6a69d96a071a6e0283f4f2b6"},
    {"@gpt2", "--type int8_row -j 3", "1000", "9c17ff4db759241669efb4bf54af654f6242a3c2dc28dd7ce53f3dc25b132ea7", "acc0226042f3b0eed0b18878b83afdca862931356943fe2862da7d94f48c045d"},
    {"@gpt2", "--type fp4 --double-quant -j 2", NULL, "81653711dd612d8d3fe78b727e0b655254b4238743374a654b57e917dc05dac1", "f3a163e59ff9269c3600ad131738165d68694610cabf901a3831b3a23259ee5e"},
    {"@odd.safetensors", "--type q4_K -j 2", NULL, "2c043bc3bb2f5c531beb86bc0ad578698af910d1c9705303e778fd4ad41bfbbb", "b88b935374a6cb6caa5cd13e67e4b372cec15c52482f6beccf17f038ccff2fb7"},
    {"@odd.safetensors", "--type q4_K -j 3", "300", "2c043bc3bb2f5c531beb86bc0ad578698af910d1c9705303e778fd4ad41bfbbb", "b88b935374a6cb6caa5cd13e67e4b372cec15c52482f6beccf17f038ccff2fb7"},
    {"@odd.safetensors", "--type q8_0 -j 2", "40", "daba9a5b0919510b076a2a0908dcd2309fcee277ceb97d0a75b969b0fc3905d2", "b6e84c601901c00b30d9710e87eb12904e47dc961a69f17197aa5b6829ae2f4d"},
    {"@odd.safetensors", "--type nf4 -j 2", "300", "39249d5fa4075f6e67c17997444a10562aadb45ae0be6cd448f2352769ae6b14", "44a72328c31270c287e2d791af471e30d87575611798891ea057fdd9b4de4612"},
    {"@odd.safetensors", "--type int8_row -j 2", "300", "87526999ca418164b64ddade84d433f954716102dbb25cee93f1080ad242181c", "cfe9c05ac79fca7e0ca4638ecec4da5cd82c99cdb5b238455c88078c842d980e"},
};

static const char *const GGUF_TYPES[] = {"auto", "f32",   "f16",  "bf16", "q8_0", "q4_0",   "q4_1", "q5_0",
                                         "q5_1", "iq4_nl", "q4_K", "q4_K_S", "q5_K", "q5_K_S", "q6_K"};

static bool is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void sha_file(const char *path, char hex[65])
{
    size_t len;
    uint8_t *b = read_file_all(path, &len);
    cr_assert_not_null(b, "read %s", path);
    mq_sha256_hex(b, len, hex);
    free(b);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A file's SHA-256; a folder's: SHA-256 of "name sha256\n" per file, names sorted. */
static void sha_output(const char *path, char hex[65])
{
    if (!is_folder(path)) {
        sha_file(path, hex);
        return;
    }
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    char *names[64];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && n < 64) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    struct mq_sha256 s;
    mq_sha256_init(&s);
    for (size_t i = 0; i < n; i++) {
        char p[1200], h[65];
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        sha_file(p, h);
        mq_sha256_update(&s, names[i], strlen(names[i]));
        mq_sha256_update(&s, " ", 1);
        mq_sha256_update(&s, h, 64);
        mq_sha256_update(&s, "\n", 1);
        free(names[i]);
    }
    uint8_t dg[32];
    mq_sha256_final(&s, dg);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", dg[i]);
}

/* stdout without its "wrote ..." line. */
static void sha_stdout(const char *out, char hex[65])
{
    struct mq_sha256 s;
    mq_sha256_init(&s);
    for (const char *l = out; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l + 1) : strlen(l);
        if (strncmp(l, "wrote ", 6) != 0) mq_sha256_update(&s, l, n);
        l += n;
    }
    uint8_t dg[32];
    mq_sha256_final(&s, dg);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", dg[i]);
}

/* ---- inputs this test writes ---- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f && fputs(text, f) >= 0 && fclose(f) == 0, "%s", path);
}

/* GPT-2: one Conv1D weight [in 64, out 96], a norm and an embedding (F32). */
static void write_gpt2(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"], \"n_embd\": 64, "
                     "\"n_layer\": 1, \"n_head\": 2, \"vocab_size\": 50, \"torch_dtype\": \"float32\"}\n");
    enum { IN = 64, OUT = 96, V = 50 };
    static float v[IN * OUT + IN + V * IN];
    uint32_t s = 7;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = (float)((int)(lcg(&s) % 2001) - 1000) / 1024.0f;
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"h.0.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]},"
             "\"h.0.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]},"
             "\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%d,%d]}}",
             IN, OUT, IN * OUT * 4, IN, IN * OUT * 4, (IN * OUT + IN) * 4, V, IN, (IN * OUT + IN) * 4,
             (int)sizeof v);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), v, sizeof v), 0);
}

/* No config: rows of 1000 (blocks cross rows), of 4096, and one of 70000 (long: pieces). */
static void write_odd(const char *path)
{
    static float v[3 * 1000 + 2 * 4096 + 70000];
    uint32_t s = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = (float)((int)(lcg(&s) % 2001) - 1000) / 997.0f;
    const char *hdr = "{\"a.down_proj.weight\":{\"dtype\":\"F32\",\"shape\":[3,1000],\"data_offsets\":[0,12000]},"
                      "\"b.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[2,4096],\"data_offsets\":[12000,44768]},"
                      "\"c.gate_proj.weight\":{\"dtype\":\"F32\",\"shape\":[1,70000],"
                      "\"data_offsets\":[44768,324768]}}";
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), v, sizeof v), 0);
}

/* tiny-qwen2's weights under a Llama config with attention_bias: q/k biases permuted. */
static void write_llama_bias(const char *dir)
{
    char path[1024], target[1200];
    snprintf(path, sizeof path, "%s/config.json", QWEN2);
    char *text = (char *)read_file_all(path, NULL);
    cr_assert_not_null(text);
    char *a = strstr(text, "\"Qwen2ForCausalLM\"");
    char *m = strstr(text, "\"model_type\": \"qwen2\"");
    cr_assert(a && m && a < m);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%.*s\"LlamaForCausalLM\"%.*s\"model_type\": \"llama\", \"attention_bias\": true%s",
             (int)(a - text), text, (int)(m - (a + 18)), a + 18, m + strlen("\"model_type\": \"qwen2\""));
    free(text);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, cfg);
    static const char *const files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char *cwd = getcwd(NULL, 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(target, sizeof target, "%s/%s/%s", cwd, QWEN2, files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        cr_assert_eq(symlink(target, path), 0, "symlink %s", path);
    }
    free(cwd);
}

static char *WORK;

static void make_inputs(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/gpt2", WORK);
    mkdir(p, 0755);
    write_gpt2(p);
    snprintf(p, sizeof p, "%s/odd.safetensors", WORK);
    write_odd(p);
    snprintf(p, sizeof p, "%s/llama-bias", WORK);
    mkdir(p, 0755);
    write_llama_bias(p);
    static const char *const gg[][2] = {{"q8_0", "q8.gguf"}, {"q4_K", "q4k.gguf"}};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", WORK, gg[i][1]);
        struct cmd_result r = run_modelq("convert %s -o %s --quiet --type %s --pure -j 2", LLAMA, p, gg[i][0]);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
    }
}

static void input_path(const char *in, char *out, size_t cap)
{
    if (in[0] == '@') snprintf(out, cap, "%s/%s", WORK, in + 1);
    else snprintf(out, cap, "%s", in);
}

static bool bnb_type(const char *args)
{
    return strstr(args, "nf4") || strstr(args, "fp4") || strstr(args, "int8_row");
}

/* Converts one case; fills the two digests. */
static void run_case(const char *in, const char *args, const char *chunk, char fsha[65], char osha[65])
{
    char ip[700], op[800];
    input_path(in, ip, sizeof ip);
    snprintf(op, sizeof op, "%s/out%s", WORK, bnb_type(args) ? "" : ".gguf");
    if (chunk) setenv("MODELQ_CHUNK_ELEMS", chunk, 1);
    struct cmd_result r = run_modelq("convert %s -o %s %s", ip, op, args);
    unsetenv("MODELQ_CHUNK_ELEMS");
    cr_assert_eq(r.code, 0, "convert %s %s: %s", in, args, r.err);
    sha_output(op, fsha);
    sha_stdout(r.out, osha);
    cmd_result_free(&r);
    if (is_folder(op)) remove_tree(op);
    else remove(op);
}

Test(output_hashes, every_type_matches_the_recorded_bytes)
{
    WORK = make_temp_dir("hashes");
    make_inputs();
    bool print = getenv("MODELQ_PRINT_HASHES") != NULL;
    if (print) {
        /* the table, regenerated: tiny models to every type, then the other inputs */
        static const char *const ins[] = {LLAMA, QWEN2, "@llama-bias"};
        char args[128], f[65], o[65];
        for (size_t i = 0; i < 3; i++)
            for (size_t k = 0; k < sizeof GGUF_TYPES / sizeof GGUF_TYPES[0]; k++) {
                snprintf(args, sizeof args, "--type %s -j 2", GGUF_TYPES[k]);
                run_case(ins[i], args, NULL, f, o);
                printf("    {\"%s\", \"%s\", NULL, \"%s\", \"%s\"},\n", ins[i], args, f, o);
            }
        static const struct { const char *in, *args, *chunk; } more[] = {
            {LLAMA, "--type nf4 -j 2", NULL},
            {LLAMA, "--type nf4-dq -j 2", NULL},
            {LLAMA, "--type fp4 -j 2", NULL},
            {LLAMA, "--type int8_row -j 2", NULL},
            {LLAMA, "--type nf4 --blocksize 128 -j 2", NULL},
            {LLAMA, "--type fp4 --double-quant --blocksize 256 -j 3", "3000"},
            {LLAMA, "--type q4_K --stats -j 2", NULL},
            {LLAMA, "--type nf4 --stats -j 2", NULL},
            {LLAMA, "--type q4_0 --tensor-type attn_v=q8_0 --keep ffn_up -j 2", NULL},
            {QWEN2, "--type nf4-dq -j 2", NULL},
            {QWEN2, "--type int8_row -j 2", NULL},
            {BNB_NF4, "--type auto -j 2", NULL},
            {BNB_NF4, "--type f32 -j 2", NULL},
            {BNB_NF4, "--type f16 -j 3", "512"},
            {BNB_NF4, "--type q8_0 --allow-requantize -j 2", NULL},
            {BNB_NF4, "--type q4_K --allow-requantize -j 2", NULL},
            {BNB_NF4, "--type nf4 --allow-requantize -j 2", NULL},
            {BNB_INT8, "--type auto -j 2", NULL},
            {BNB_INT8, "--type f32 -j 2", NULL},
            {BNB_INT8, "--type q6_K --allow-requantize -j 2", NULL},
            {BNB_INT8, "--type int8_row --allow-requantize -j 2", NULL},
            {"@q8.gguf", "--type auto -j 2", NULL},
            {"@q8.gguf", "--type f32 -j 2", NULL},
            {"@q8.gguf", "--type q4_0 --allow-requantize -j 2", NULL},
            {"@q4k.gguf", "--type f16 -j 2", NULL},
            {"@q4k.gguf", "--type q8_0 --allow-requantize -j 3", "40"},
            {"@gpt2", "--type nf4 -j 3", "1000"},
            {"@gpt2", "--type int8_row -j 3", "1000"},
            {"@gpt2", "--type fp4 --double-quant -j 2", NULL},
            {"@odd.safetensors", "--type q4_K -j 2", NULL},
            {"@odd.safetensors", "--type q4_K -j 3", "300"},
            {"@odd.safetensors", "--type q8_0 -j 2", "40"},
            {"@odd.safetensors", "--type nf4 -j 2", "300"},
            {"@odd.safetensors", "--type int8_row -j 2", "300"},
        };
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
            run_case(more[i].in, more[i].args, more[i].chunk, f, o);
            printf("    {\"%s\", \"%s\", %s%s%s, \"%s\", \"%s\"},\n", more[i].in, more[i].args,
                   more[i].chunk ? "\"" : "", more[i].chunk ? more[i].chunk : "NULL", more[i].chunk ? "\"" : "", f, o);
        }
    } else {
        cr_assert_geq(sizeof CASES / sizeof CASES[0], 3 * sizeof GGUF_TYPES / sizeof GGUF_TYPES[0]);
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
            char f[65], o[65];
            run_case(CASES[i].in, CASES[i].args, CASES[i].chunk, f, o);
            cr_expect_str_eq(f, CASES[i].file_sha, "%s %s (chunk %s): output bytes changed", CASES[i].in,
                             CASES[i].args, CASES[i].chunk ? CASES[i].chunk : "default");
            cr_expect_str_eq(o, CASES[i].stdout_sha, "%s %s: stdout changed", CASES[i].in, CASES[i].args);
        }
    }
    remove_tree(WORK);
    free(WORK);
}

/* The Q/K negative controls (test-only options): rows unpermuted, K permuted with Q's heads. */
static const char *const QK_SHA[2] = {
    "63c5ff5c58113350db1cace9545d7fc41be43c21610f3fb831388091f02601d4",
    "e320092e7319e1ff547fb393fcc6b779d44cb61a993757c15bb4c89874850027",
};

Test(output_hashes, qk_debug_permutations_match_the_recorded_bytes)
{
    char *dir = make_temp_dir("hashes-qk");
    for (int d = 1; d <= 2; d++) {
        char out[600], hex[65];
        snprintf(out, sizeof out, "%s/qk%d.gguf", dir, d);
        struct mq_convert_options o;
        mq_convert_options_default(&o);
        o.input = LLAMA;
        o.output = out;
        o.type = "q8_0";
        o.threads = 2;
        o.debug_qk_permute = d;
        struct mq_convert_report rep;
        struct mq_error err;
        cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
        mq_convert_report_free(&rep);
        sha_file(out, hex);
        if (getenv("MODELQ_PRINT_HASHES")) printf("    \"%s\",\n", hex);
        else cr_expect_str_eq(hex, QK_SHA[d - 1], "debug_qk_permute %d: output bytes changed", d);
    }
    remove_tree(dir);
    free(dir);
}
