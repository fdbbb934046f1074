#![no_main]
//! Counts files (JSON) read, merged and turned into weights by every scheme and policy.
use libfuzzer_sys::fuzz_target;
use xent::weights::{AbsentClasses, ClassCounts, RunningFrequencies, Scheme};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(c) = ClassCounts::from_json(text) else { return };
    let mut twice = c.clone();
    let _ = twice.merge(&c);
    let _ = c.frequencies();
    for scheme in [
        Scheme::InverseFrequency,
        Scheme::Balanced,
        Scheme::MedianFrequency,
        Scheme::Enet { c: 1.02 },
        Scheme::EffectiveNumber { beta: 0.999 },
        Scheme::InverseSqrtFrequency,
    ] {
        for absent in [AbsentClasses::Zero, AbsentClasses::Largest, AbsentClasses::Error] {
            let _ = c.weights(scheme, absent);
        }
    }
    if let Ok(mut r) = RunningFrequencies::new(c.num_classes(), 0.9) {
        let _ = r.update(&c);
        let _ = r.weights(Scheme::InverseFrequency, AbsentClasses::Zero);
    }
});
