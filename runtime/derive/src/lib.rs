//! `#[derive(Trace)]` for spanheap — **not implemented yet**; it arrives
//! with the typed API (`Gc<T>`, `Trace`) in the `spanheap` crate. This crate
//! exists so that the workspace layout is in place; it exports no macro.
