#ifndef PSOD_VERSION_H
#define PSOD_VERSION_H
#define PSOD_VERSION "0.1.0"
#endif
