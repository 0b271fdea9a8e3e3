#pragma once
/// The disk backends this build has (meson defines DENGINE_HAVE_<NAME> for each one built), for
/// the integration tests that run a case on every backend.

#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif
#ifdef DENGINE_HAVE_LMDB
#include "dengine/backends/lmdb.hpp"
#endif
#ifdef DENGINE_HAVE_SQLITE
#include "dengine/backends/sqlite.hpp"
#endif
