// The compiled mode's library for one shipped backend (docs/building.md, "Compiled mode"): the
// explicit instantiations of EmbeddedEngine<backend>'s members and of its LocalKvClient, which
// the declarations in dengine/engine/compiled.hpp promise to programs built with
// DENGINE_COMPILED_<BACKEND>. engine/meson.build compiles this file once per backend, naming it
// with DENGINE_LIBRARY_BACKEND (the namespace: rawfile, lmdb, ...) and
// DENGINE_LIBRARY_BACKEND_HEADER (its header, quoted).
#include DENGINE_LIBRARY_BACKEND_HEADER
#include "dengine/engine/embedded_engine_impl.hpp"

namespace dengine::engine {

// NOLINTNEXTLINE(bugprone-macro-parentheses): the macro is a namespace name, not an expression.
using LibraryEngine = EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>;

template class LocalKvClient<LibraryEngine::replica_type>;

// The engine's members one by one, not `template class EmbeddedEngine<...>`: instantiating the
// class would also instantiate open_persistent for the in-memory backend, which clang 14 does
// despite its requires-clause. Every member that is not defined in the class is listed; the
// private ones are instantiated through start() and stop(). (An explicit instantiation names the
// class by its template-id: the alias is not allowed there.)
template auto EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::start(EngineConfig config,
                                                                      node::LocalHub* hub)
    -> result<std::unique_ptr<LibraryEngine>>;
template EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::~EmbeddedEngine();
template result<void> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::wait_ready(
    std::chrono::milliseconds timeout);
template auto EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::client() noexcept -> client_type;
template bool EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::is_leader() const noexcept;
template LeaderInfo EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::leader_info() const noexcept;
template node::NodeStatus EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::status() const noexcept;
template NodeId EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::id() const noexcept;
template result<Membership> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::add_learner(
    NodeId node, std::string address);
template result<Membership> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::add_voter(
    NodeId node, std::string address);
template result<Membership> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::remove_member(
    NodeId node);
template result<void> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::transfer_leadership(
    NodeId target);
template Membership EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::members() const;
template const node::Registry& EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::metrics()
    const noexcept;
template const node::NodeMetrics& EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::node_metrics()
    const noexcept;
template result<void> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::stop();
template result<void> EmbeddedEngine<DENGINE_LIBRARY_BACKEND::Backend>::raise_marker();

}  // namespace dengine::engine
