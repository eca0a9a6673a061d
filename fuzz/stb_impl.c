/* The stb decoders compiled with the fuzzers' instrumentation (the fuzz build does not link
   Debian's prebuilt libstb, so sanitizers and coverage see inside the image decoder). */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
