/// A binary min-heap of timed events; ties keep insertion order so runs are reproducible.
struct EventQueue<Payload> {
    private var heap: [(time: Duration, seq: UInt64, payload: Payload)] = []
    private var seq: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: Duration? { heap.first?.time }

    private static func less(_ a: (time: Duration, seq: UInt64, payload: Payload), _ b: (time: Duration, seq: UInt64, payload: Payload))
        -> Bool
    {
        a.time != b.time ? a.time < b.time : a.seq < b.seq
    }

    mutating func push(_ time: Duration, _ p: Payload) {
        seq += 1
        heap.append((time, seq, p))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (time: Duration, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && Self.less(heap[l], heap[m]) { m = l }
                if r < heap.count && Self.less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return (top.time, top.payload)
    }
}
