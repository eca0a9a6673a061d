// The files `vaegan serve` serves from memory, embedded at build time with the assembler's
// .incbin: the page (src/serve/page.html) and Chart.js from Debian's libjs-chart.js (the path is
// VAEGAN_CHARTJS, set by CMake). Each is followed by a NUL byte that is not part of it.

#define VAEGAN_INCBIN(name, path)                                                                         \
  __asm__(".section .rodata\n.global " #name "_begin\n.type " #name "_begin, @object\n.balign 16\n" #name \
          "_begin:\n.incbin \"" path "\"\n.global " #name "_end\n.type " #name "_end, @object\n" #name    \
          "_end:\n.byte 0\n.previous\n")

VAEGAN_INCBIN(vaegan_page, VAEGAN_PAGE);
VAEGAN_INCBIN(vaegan_chartjs, VAEGAN_CHARTJS);
