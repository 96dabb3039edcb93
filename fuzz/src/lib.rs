//! Seeded inputs for biogate's fuzz targets (bolero).
//!
//! Each target is seeded with a few realistic inputs taken from the protocol documents.
//! Its generator, [`seeded`], yields one of them with a few byte edits (most inputs: they
//! get past the first syntax check and reach deep into the parser), or raw bytes. Under
//! `cargo test` bolero draws the edits at random for [`ITERATIONS`] inputs; under `cargo
//! xtask fuzz` libFuzzer drives the same generator with coverage feedback.

use bolero::generator::{TypeGenerator, ValueGenerator};

/// bolero, for the targets of crates that do not depend on it themselves (the plugins).
pub use bolero;

/// Inputs per target in the bounded run of `cargo test` (a few seconds in debug builds).
pub const ITERATIONS: usize = 20_000;

/// One change to the bytes of a seed; positions wrap around the current length.
#[derive(Debug, TypeGenerator)]
enum Edit {
    /// The byte at `at` becomes `byte`.
    Set { at: u16, byte: u8 },
    /// `byte` goes in before `at`.
    Insert { at: u16, byte: u8 },
    /// Up to `len` bytes from `at` go.
    Remove { at: u16, len: u8 },
    /// `len` bytes of seed `seed` from `from` go in before `at`: a token of the format
    /// where it is not expected (a tab inside a time, a second verb, a nested object).
    Splice { at: u16, seed: u8, from: u16, len: u8 },
}

/// What the generator draws: a seed (or, one time in `seeds + 1`, `raw`) and its edits.
#[derive(Debug, TypeGenerator)]
struct Draw {
    base: u8,
    /// A few: more would break every seed's first line.
    #[generator(bolero::produce::<Vec<Edit>>().with().len(0usize..=4))]
    edits: Vec<Edit>,
    raw: Vec<u8>,
}

/// Inputs made from `seeds` by a few random edits, and raw bytes.
pub fn seeded(seeds: Vec<Vec<u8>>) -> impl ValueGenerator<Output = Vec<u8>> {
    bolero::produce::<Draw>().map_gen(move |draw| build(&seeds, draw))
}

fn build(seeds: &[Vec<u8>], draw: Draw) -> Vec<u8> {
    let mut bytes = match seeds.get(usize::from(draw.base) % (seeds.len() + 1)) {
        Some(seed) => seed.clone(),
        None => draw.raw,
    };
    for edit in draw.edits {
        let at = |at: u16, len: usize| usize::from(at) % (len + 1);
        match edit {
            Edit::Set { at: i, byte } => {
                if !bytes.is_empty() {
                    let i = usize::from(i) % bytes.len();
                    bytes[i] = byte;
                }
            }
            Edit::Insert { at: i, byte } => {
                let i = at(i, bytes.len());
                bytes.insert(i, byte);
            }
            Edit::Remove { at: i, len } => {
                let i = at(i, bytes.len());
                let end = (i + usize::from(len)).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Splice { at: i, seed, from, len } => {
                let Some(source) = seeds.get(usize::from(seed) % seeds.len().max(1)) else { continue };
                let from = at(from, source.len());
                let end = (from + usize::from(len)).min(source.len());
                let i = at(i, bytes.len());
                bytes.splice(i..i, source[from..end].iter().copied());
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_stay_in_bounds() {
        let seeds = vec![b"abc".to_vec(), Vec::new()];
        let draw = Draw {
            base: 0,
            edits: vec![
                Edit::Set { at: 7, byte: b'X' },
                Edit::Insert { at: 3, byte: b'!' },
                Edit::Remove { at: 0, len: 1 },
                Edit::Splice { at: 9, seed: 0, from: 1, len: 200 },
                Edit::Splice { at: 0, seed: 1, from: 5, len: 5 },
            ],
            raw: Vec::new(),
        };
        assert_eq!(build(&seeds, draw), b"Xbcc!");
        let raw = Draw { base: 2, edits: vec![Edit::Remove { at: 60_001, len: 1 }], raw: b"raw".to_vec() };
        assert_eq!(build(&seeds, raw), b"rw");
    }
}
