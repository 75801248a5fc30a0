// stackoverflow: unbounded recursion on the main thread (default) or in a spawned thread (`thread`) hits the guard page; Rust's SIGSEGV handler on its alternate stack recognises it, prints "thread '...' has overflowed its stack" and aborts (SIGABRT, 134). Run: stackoverflow [thread].
#![allow(unconditional_recursion)]
use std::ptr;

// Volatile accesses keep each frame's 1 KiB buffer real (and the recursion from becoming a loop), on every rustc.
fn recurse(n: u64, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    let i = (n % 1024) as usize;
    unsafe { ptr::write_volatile(&mut local[i], ptr::read_volatile(&buf[i]).wrapping_add(1)) };
    recurse(n + 1, &mut local) + unsafe { ptr::read_volatile(&local[0]) } as u64
}

fn main() {
    println!("recursing");
    let in_thread = std::env::args().nth(1).as_deref() == Some("thread");
    if in_thread {
        let h = std::thread::Builder::new().name("deep".into()).stack_size(512 * 1024)
            .spawn(|| recurse(0, &mut [0u8; 1024])).unwrap();
        println!("returned {:?} (wrong)", h.join().is_ok());
    } else {
        println!("returned {} (wrong)", recurse(0, &mut [0u8; 1024]));
    }
}
