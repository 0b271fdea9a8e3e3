#pragma once
/// The compiled mode's explicit instantiation declarations (docs/building.md, "Compiled mode"):
/// with DENGINE_COMPILED defined, embedded_engine.hpp includes this instead of the member
/// definitions, and for each shipped backend whose library the program links
/// (dependency('dengine-embedded-<backend>') or pkg-config, which define
/// DENGINE_COMPILED_<BACKEND>) the engine and its client are declared as instantiated there.
/// The libraries' sources (engine/src/embedded_<backend>.cpp) hold the definitions.
///
/// An engine over a backend of your own, in a program built in compiled mode: include
/// dengine/engine/embedded_engine_impl.hpp in the translation units that use it.

#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/local_kv_client.hpp"

#ifdef DENGINE_COMPILED_MEMORY
#include "dengine/backends/memory/backend.hpp"
extern template class dengine::engine::EmbeddedEngine<dengine::memory::Backend>;
extern template class dengine::engine::LocalKvClient<
    dengine::engine::EmbeddedEngine<dengine::memory::Backend>::replica_type>;
#endif

#ifdef DENGINE_COMPILED_RAWFILE
#include "dengine/backends/rawfile/backend.hpp"
extern template class dengine::engine::EmbeddedEngine<dengine::rawfile::Backend>;
extern template class dengine::engine::LocalKvClient<
    dengine::engine::EmbeddedEngine<dengine::rawfile::Backend>::replica_type>;
#endif

#ifdef DENGINE_COMPILED_LMDB
#include "dengine/backends/lmdb/backend.hpp"
extern template class dengine::engine::EmbeddedEngine<dengine::lmdb::Backend>;
extern template class dengine::engine::LocalKvClient<
    dengine::engine::EmbeddedEngine<dengine::lmdb::Backend>::replica_type>;
#endif

#ifdef DENGINE_COMPILED_SQLITE
#include "dengine/backends/sqlite/backend.hpp"
extern template class dengine::engine::EmbeddedEngine<dengine::sqlite::Backend>;
extern template class dengine::engine::LocalKvClient<
    dengine::engine::EmbeddedEngine<dengine::sqlite::Backend>::replica_type>;
#endif
