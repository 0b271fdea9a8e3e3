#pragma once
/// The node layer's classes that a declaration may name without their definitions (an engine's
/// class names its snapshot store type; only its member definitions use it).

namespace dengine::node {

class FileSnapshotStore;    // snapshot_store.hpp
class MemorySnapshotStore;  // snapshot_store.hpp

}  // namespace dengine::node
