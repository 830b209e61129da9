/// Work done so far in a long step (converting weights, checking checksums), for progress bars: items and bytes.
public struct WorkProgress: Sendable, Equatable {
    /// What is being done, in a few words ("convert weights", "check checksums").
    public var step: String
    /// Items finished so far (tensors, blobs…).
    public var items: Int
    /// Items the step will do in all.
    public var totalItems: Int
    /// Bytes finished so far; 0 when the step does not count bytes.
    public var bytes: Int
    /// Bytes the step will process in all; 0 when it does not count bytes.
    public var totalBytes: Int

    /// Creates a progress report; leave out the byte counts for a step that counts only items.
    public init(step: String, items: Int, totalItems: Int, bytes: Int = 0, totalBytes: Int = 0) {
        self.step = step
        self.items = items
        self.totalItems = totalItems
        self.bytes = bytes
        self.totalBytes = totalBytes
    }
}

/// Called with the progress of long work, from the thread doing it (keep it cheap; nil: no reporting).
public typealias ProgressHandler = @Sendable (WorkProgress) -> Void
