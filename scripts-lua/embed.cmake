# embed.cmake: turns a text file into a C source defining
#   const char NAME[]; const size_t NAME_len;
# so the binary carries scripts-lua/ and needs no install path.
# Usage: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}.tmp" "/* Generated from ${IN}; do not edit. */\n#include <stddef.h>\nconst char ${NAME}[] = {${body} 0};\nconst size_t ${NAME}_len = ${len};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
