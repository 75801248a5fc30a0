// mpsc: std::sync::mpsc channels: 4 producers into one consumer, a sync_channel(0) rendezvous, recv_timeout expiring, a disconnected sender; prints totals. Run: mpsc (no args).
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let (tx, rx) = mpsc::channel::<u64>();
    for p in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || for i in 0..1000 { tx.send(p * 1000 + i).unwrap(); });
    }
    drop(tx);
    let (mut n, mut sum) = (0u64, 0u64);
    for v in rx { n += 1; sum += v; }
    println!("received {} sum {}", n, sum);

    let (stx, srx) = mpsc::sync_channel::<u32>(0);
    let h = thread::spawn(move || { let mut s = 0; for v in srx { s += v; } s });
    for i in 1..=100 { stx.send(i).unwrap(); }
    drop(stx);
    println!("rendezvous sum {}", h.join().unwrap());

    let (_keep, rx2) = mpsc::channel::<u8>();
    let start = Instant::now();
    let r = rx2.recv_timeout(Duration::from_millis(50));
    println!("recv_timeout: {:?}, waited >= 50ms: {}", r, start.elapsed() >= Duration::from_millis(50));

    let (tx3, rx3) = mpsc::channel::<u8>();
    thread::spawn(move || { thread::sleep(Duration::from_millis(20)); drop(tx3); });
    println!("after sender dropped: {:?}", rx3.recv());
    println!("done");
}
