// The compiled mode's library for one shipped backend (docs/building.md, "Compiled mode"): the
// explicit instantiations of EmbeddedEngine<backend> and of its LocalKvClient, which the
// declarations in dengine/engine/compiled.hpp promise to programs built with
// DENGINE_COMPILED_<BACKEND>. engine/meson.build compiles this file once per backend, naming it
// with DENGINE_LIBRARY_BACKEND (the namespace: rawfile, lmdb, ...) and
// DENGINE_LIBRARY_BACKEND_HEADER (its header, quoted).
#include DENGINE_LIBRARY_BACKEND_HEADER
#include "dengine/engine/embedded_engine_impl.hpp"

// NOLINTBEGIN(bugprone-macro-parentheses): the macro is a namespace name, not an expression.
template class dengine::engine::EmbeddedEngine<dengine::DENGINE_LIBRARY_BACKEND::Backend>;
template class dengine::engine::LocalKvClient<
    dengine::engine::EmbeddedEngine<dengine::DENGINE_LIBRARY_BACKEND::Backend>::replica_type>;
// NOLINTEND(bugprone-macro-parentheses)
