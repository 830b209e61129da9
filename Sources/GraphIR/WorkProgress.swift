/// Work done so far in a long step (converting weights, checking checksums), for progress bars: items and bytes.
public struct WorkProgress: Sendable, Equatable {
    /// What is being done, in a few words ("convert weights", "check checksums").
    public var step: String
    public var items: Int
    public var totalItems: Int
    public var bytes: Int
    public var totalBytes: Int

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
