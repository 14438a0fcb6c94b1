//! Heap census: live objects counted by type (for `--stats` reports and
//! for users' memory debugging; Go has no direct equivalent — its closest
//! tools are heap profiles (`pprof`) and `viewcore`'s histogram).
//!
//! A census is taken inside a collection cycle, at mark termination with
//! the world stopped (the same stop as checkmark mode): a walk from the
//! root table visits every reachable object once (`Tracer` in checkmark
//! mode, with its visited set), and each is counted under its type's name
//! (from the scan object's header) at its slot size. Objects without a
//! header (no GC pointers and no drop glue, allocated in noscan spans and
//! packed into tiny blocks) carry no type: they are counted together as
//! [`PLAIN_DATA`], a tiny block once however many values share it.
//!
//! What a census does not see: objects reachable only from a mutator's
//! Rust stack (inside a scope), and the contents of a `GcRefCell` that a
//! stopped mutator holds exclusively at that moment.

use std::collections::HashMap;
use std::fmt;

/// The census name of objects without a header.
pub const PLAIN_DATA: &str = "(plain data: no GC pointers, no drop glue)";

/// Live objects of one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CensusEntry {
    /// `std::any::type_name` of the type, or [`PLAIN_DATA`].
    pub type_name: &'static str,
    /// Reachable objects of the type.
    pub objects: u64,
    /// Their slot sizes (the memory they occupy, header and rounding to
    /// their size class included).
    pub bytes: u64,
}

/// A census of the reachable heap, largest types (by bytes) first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// The collection cycle it was taken in.
    pub cycle: u64,
    /// One entry per type, by bytes, descending (ties by name).
    pub entries: Vec<CensusEntry>,
}

impl Census {
    /// Builds a census from `(type name, slot size)` per reachable object.
    pub(crate) fn from_objects(
        cycle: u64,
        objects: impl Iterator<Item = (&'static str, u64)>,
    ) -> Census {
        let mut by_type: HashMap<&'static str, (u64, u64)> = HashMap::new();
        for (name, bytes) in objects {
            let e = by_type.entry(name).or_default();
            e.0 += 1;
            e.1 += bytes;
        }
        let mut entries: Vec<CensusEntry> = by_type
            .into_iter()
            .map(|(type_name, (objects, bytes))| CensusEntry {
                type_name,
                objects,
                bytes,
            })
            .collect();
        entries.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.type_name.cmp(b.type_name)));
        Census { cycle, entries }
    }

    /// Total reachable objects.
    pub fn objects(&self) -> u64 {
        self.entries.iter().map(|e| e.objects).sum()
    }

    /// Total bytes of reachable objects.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes).sum()
    }

    /// The entry of the type named `type_name`, if any object of it is live.
    pub fn get(&self, type_name: &str) -> Option<&CensusEntry> {
        self.entries.iter().find(|e| e.type_name == type_name)
    }
}

impl fmt::Display for Census {
    /// A table: objects, bytes and type per line, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>12} {:>14}  type (census at gc {})",
            "objects", "bytes", self.cycle
        )?;
        for e in &self.entries {
            writeln!(f, "{:>12} {:>14}  {}", e.objects, e.bytes, e.type_name)?;
        }
        write!(f, "{:>12} {:>14}  total", self.objects(), self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_type_and_sorts_by_bytes() {
        let c = Census::from_objects(
            3,
            [("a", 16), ("b", 64), ("a", 16), (PLAIN_DATA, 8)].into_iter(),
        );
        assert_eq!(c.cycle, 3);
        let names: Vec<_> = c.entries.iter().map(|e| e.type_name).collect();
        assert_eq!(names, ["b", "a", PLAIN_DATA]);
        assert_eq!(c.get("a").map(|e| (e.objects, e.bytes)), Some((2, 32)));
        assert_eq!((c.objects(), c.bytes()), (4, 104));
        let text = c.to_string();
        assert!(
            text.lines().count() == 5 && text.ends_with("total"),
            "{text}"
        );
    }
}
