// threads: std::thread spawn/join (16 threads with results), a named thread, thread::scope borrowing, thread-locals, Arc + atomics, available_parallelism >= 1; prints the totals. Run: threads (no args).
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

thread_local!(static LOCAL: Cell<u64> = Cell::new(7));

fn work(id: u64) -> u64 {
    let mut h = id.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    for _ in 0..200_000 {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
    }
    h
}

fn main() {
    let handles: Vec<_> = (0..16u64).map(|i| thread::spawn(move || work(i))).collect();
    let x = handles.into_iter().enumerate().fold(0u64, |acc, (i, h)| acc ^ h.join().unwrap().wrapping_mul(i as u64 + 1));
    println!("16 threads xor {:016x}", x);

    let named = thread::Builder::new().name("worker-a".into()).stack_size(256 * 1024)
        .spawn(|| thread::current().name().unwrap_or("?").to_string()).unwrap();
    println!("named thread {}", named.join().unwrap());

    let data = vec![1u64, 2, 3, 4, 5, 6, 7, 8];
    let total = AtomicU64::new(0);
    thread::scope(|s| {
        for chunk in data.chunks(2) {
            let total = &total;
            s.spawn(move || { total.fetch_add(chunk.iter().sum::<u64>(), Ordering::SeqCst); });
        }
    });
    println!("scoped sum {}", total.load(Ordering::SeqCst));

    let shared = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..8).map(|_| { let s = shared.clone(); thread::spawn(move || for _ in 0..10_000 { s.fetch_add(1, Ordering::Relaxed); }) }).collect();
    for h in hs { h.join().unwrap(); }
    println!("atomic counter {}", shared.load(Ordering::SeqCst));

    LOCAL.with(|l| l.set(100));
    let other = thread::spawn(|| LOCAL.with(|l| l.get())).join().unwrap();
    println!("thread-local main {} other {}", LOCAL.with(|l| l.get()), other);
    println!("available_parallelism >= 1: {}", thread::available_parallelism().map(|n| n.get() >= 1).unwrap_or(false));
    println!("done");
}
