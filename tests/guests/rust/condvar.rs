// condvar: Mutex + Condvar producer/consumers, wait_timeout expiring, RwLock, Barrier, a poisoned Mutex after a panic in a thread; prints totals. Run: condvar (no args).
use std::collections::VecDeque;
use std::sync::{Arc, Barrier, Condvar, Mutex, RwLock};
use std::thread;
use std::time::Duration;

fn main() {
    let q = Arc::new((Mutex::new((VecDeque::new(), false)), Condvar::new()));
    let consumers: Vec<_> = (0..4).map(|_| {
        let q = q.clone();
        thread::spawn(move || {
            let (m, cv) = &*q;
            let mut got = 0u64;
            loop {
                let mut g = m.lock().unwrap();
                while g.0.is_empty() && !g.1 { g = cv.wait(g).unwrap(); }
                match g.0.pop_front() { Some(v) => got += v, None => return got }
            }
        })
    }).collect();
    for i in 1..=1000u64 { let (m, cv) = &*q; m.lock().unwrap().0.push_back(i); cv.notify_one(); }
    { let (m, cv) = &*q; m.lock().unwrap().1 = true; cv.notify_all(); }
    let total: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    println!("condvar consumed total {}", total);

    let pair = (Mutex::new(false), Condvar::new());
    let (g, res) = pair.1.wait_timeout(pair.0.lock().unwrap(), Duration::from_millis(30)).unwrap();
    println!("wait_timeout timed out: {} flag {}", res.timed_out(), *g);
    drop(g);

    let rw = Arc::new(RwLock::new(0u64));
    let hs: Vec<_> = (0..4).map(|i| { let rw = rw.clone(); thread::spawn(move || { for _ in 0..1000 { if i % 2 == 0 { *rw.write().unwrap() += 1; } else { let _ = *rw.read().unwrap(); } } }) }).collect();
    for h in hs { h.join().unwrap(); }
    println!("rwlock value {}", *rw.read().unwrap());

    let barrier = Arc::new(Barrier::new(5));
    let hs: Vec<_> = (0..5).map(|_| { let b = barrier.clone(); thread::spawn(move || b.wait().is_leader()) }).collect();
    let leaders = hs.into_iter().filter(|_| true).map(|h| h.join().unwrap()).filter(|l| *l).count();
    println!("barrier leaders {}", leaders);

    std::panic::set_hook(Box::new(|_| {})); // keep stderr quiet for the expected panic
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = thread::spawn(move || { let _g = m2.lock().unwrap(); panic!("poison"); }).join();
    println!("thread panicked: {} mutex poisoned: {}", r.is_err(), m.is_poisoned());
    println!("done");
}
