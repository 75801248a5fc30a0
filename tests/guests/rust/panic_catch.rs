// panic_catch: catch_unwind of a panic (message printed by the default hook on stderr), of an index out of bounds, of an overflow in a checked op, a panic in a joined thread; all caught, then exits 0. Run: panic_catch (no args).
use std::panic;
use std::thread;

fn main() {
    let r = panic::catch_unwind(|| { panic!("boom {}", 42); });
    println!("caught explicit: {}", r.is_err());
    let v = vec![1, 2, 3];
    let idx = std::env::args().count() + 9;
    let r = panic::catch_unwind(|| v[idx]);
    println!("caught index: {}", r.is_err());
    let r = panic::catch_unwind(|| { let x: u8 = 200; x.checked_add(100).expect("overflow") });
    println!("caught expect: {}", r.is_err());
    let r = thread::Builder::new().name("child".into()).spawn(|| { panic!("in child"); }).unwrap().join();
    match r {
        Err(e) => println!("child panic payload: {}", e.downcast_ref::<&str>().copied().unwrap_or("?")),
        Ok(()) => println!("child did not panic (wrong)"),
    }
    println!("done");
}
