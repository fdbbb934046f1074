//! Class counts and weighting schemes beyond the golden cases: merging, serialisation, errors,
//! and the seed helper's two traps.

use crate::common::rng::Rng;
use xent::weights::*;
use xent::*;

fn random_labels(seed: u64, n: usize, k: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| if rng.uniform() < 0.05 { 255 } else { (rng.below(k * k) as f64).sqrt() as u8 }).collect()
}

#[test]
fn merged_shards_equal_one_pass_in_any_order() {
    let labels = random_labels(1, 12 * 50, 5);
    let all = ClassCounts::from_images(View::new(&labels, &[12, 50]).unwrap(), 5, Some(255)).unwrap();
    let shard = |a: usize, b: usize| {
        ClassCounts::from_images(View::new(&labels[a * 50..b * 50], &[b - a, 50]).unwrap(), 5, Some(255)).unwrap()
    };
    let (s1, s2, s3) = (shard(0, 4), shard(4, 5), shard(5, 12));
    let mut fwd = s1.clone();
    fwd.merge(&s2).unwrap();
    fwd.merge(&s3).unwrap();
    let mut rev = s3.clone();
    rev.merge(&s1).unwrap();
    rev.merge(&s2).unwrap();
    assert_eq!(fwd, all);
    assert_eq!(rev, all);
    for scheme in [Scheme::MedianFrequency, Scheme::EffectiveNumber { beta: 0.99 }, Scheme::InverseFrequency] {
        assert_eq!(
            fwd.weights(scheme, AbsentClasses::Zero).unwrap(),
            all.weights(scheme, AbsentClasses::Zero).unwrap()
        );
    }
}

#[test]
fn counts_round_trip_through_json_and_bad_json_is_an_error() {
    let labels = random_labels(2, 300, 4);
    let c = ClassCounts::from_images(View::new(&labels, &[3, 100]).unwrap(), 4, Some(255)).unwrap();
    assert_eq!(ClassCounts::from_json(&c.to_json()).unwrap(), c);
    assert!(matches!(ClassCounts::from_json("{\"num_classes\": 2"), Err(Error::Parse { .. })));
    let short = c.to_json().replacen("\"num_classes\": 4", "\"num_classes\": 5", 1);
    assert!(matches!(ClassCounts::from_json(&short), Err(Error::Parse { .. })));
}

#[test]
fn a_label_out_of_range_names_its_position_and_value() {
    let labels = [0u16, 1, 1, 0, 1, 7, 0, 1];
    let err = ClassCounts::from_images(View::new(&labels, &[2, 4]).unwrap(), 2, Some(255)).unwrap_err();
    assert_eq!(
        err,
        Error::TargetOutOfRange { what: "labels", index: 5, value: 7, classes: 2, ignore_index: Some(255) }
    );
    let mut c = ClassCounts::new(2, None);
    assert!(c.add_image(&[0i32, -1]).is_err());
    assert_eq!(c, ClassCounts::new(2, None), "a failed image leaves the counts unchanged");
}

#[test]
fn merging_counts_of_different_setups_is_an_error() {
    let mut a = ClassCounts::new(2, Some(255));
    assert!(matches!(a.merge(&ClassCounts::new(3, Some(255))), Err(Error::Counts(_))));
    assert!(matches!(a.merge(&ClassCounts::new(2, None)), Err(Error::Counts(_))));
}

/// The seed's helper: alpha = positives of the batch / (H * W) of one image.
fn seed_inverse_freq(mask: &[u8], h: usize, w: usize) -> [f64; 2] {
    let alpha = mask.iter().filter(|&&m| m == 1).count() as f64 / (h * w) as f64;
    [alpha, 1.0 - alpha]
}

#[test]
fn seed_trap_batch_alpha_can_pass_one_but_batch_weights_cannot() {
    // N = 4 images of 2x2, 3 positives each: the seed's alpha is 12 / 4 = 3.
    let mask = [1u8, 1, 1, 0].repeat(4);
    let seed = seed_inverse_freq(&mask, 2, 2);
    assert_eq!(seed, [3.0, -2.0], "the seed's helper gives a negative weight");
    let w = batch_weights(
        View::new(&mask, &[4, 1, 2, 2]).unwrap(),
        2,
        Some(255),
        Scheme::InverseFrequency,
        AbsentClasses::Zero,
    )
    .unwrap();
    assert_eq!(w, vec![0.75, 0.25]);
    assert!(w.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn seed_trap_all_background_batch_keeps_the_loss_finite() {
    let mask = [0u8; 8];
    let logits: Vec<f32> = Rng::new(3).vec(16, 1.0).into_iter().map(|v| v as f32).collect();
    let (x, t) = (View::new(&logits, &[2, 2, 2, 2]).unwrap(), View::new(&mask, &[2, 2, 2]).unwrap());
    let ce = |w: Vec<f32>| {
        CrossEntropyLoss::new(CrossEntropyOptions { weight: Some(w), ..Default::default() })
            .unwrap()
            .forward(x, t)
            .unwrap()
            .scalar()
            .unwrap()
    };
    let seed = seed_inverse_freq(&mask, 2, 2);
    assert!(ce(seed.iter().map(|&v| v as f32).collect()).is_nan(), "the seed's weights [0, 1] give 0 / 0");
    let w = batch_weights(t, 2, Some(255), Scheme::InverseFrequency, AbsentClasses::Zero).unwrap();
    assert_eq!(w, vec![1.0, 0.0]);
    assert!(ce(w.iter().map(|&v| v as f32).collect()).is_finite());
}

#[test]
fn absent_class_policies() {
    let mut c = ClassCounts::new(3, None);
    c.add_image(&[0u8, 0, 0, 1]).unwrap();
    assert_eq!(c.weights(Scheme::Balanced, AbsentClasses::Zero).unwrap(), vec![4.0 / 9.0, 4.0 / 3.0, 0.0]);
    assert_eq!(c.weights(Scheme::Balanced, AbsentClasses::Largest).unwrap(), vec![4.0 / 9.0, 4.0 / 3.0, 4.0 / 3.0]);
    assert!(matches!(c.weights(Scheme::Balanced, AbsentClasses::Error), Err(Error::Counts(m)) if m.contains("[2]")));
    // enet is defined at a zero count.
    assert_eq!(c.weights(Scheme::Enet { c: 1.02 }, AbsentClasses::Zero).unwrap()[2], 1.0 / 1.02f64.ln());
    assert!(matches!(ClassCounts::new(2, None).weights(Scheme::Balanced, AbsentClasses::Zero), Err(Error::Counts(_))));
}

#[test]
fn scheme_parameters_out_of_range_are_errors() {
    assert!("enet".parse::<Scheme>().and_then(|s| s.with_parameters(Some(1.0), None)).is_err());
    assert!("effective_number".parse::<Scheme>().and_then(|s| s.with_parameters(None, Some(1.0))).is_err());
    assert!("effective_number".parse::<Scheme>().and_then(|s| s.with_parameters(None, Some(f64::NAN))).is_err());
    assert!("nope".parse::<Scheme>().and_then(|s| s.with_parameters(None, None)).is_err());
    assert_eq!("enet".parse::<Scheme>().and_then(|s| s.with_parameters(None, None)).unwrap(), Scheme::Enet { c: 1.02 });
    assert!(RunningFrequencies::new(2, 1.0).is_err());
}

#[test]
fn running_frequencies_smooth_batches() {
    let mut run = RunningFrequencies::new(2, 0.5).unwrap();
    assert!(run.weights(Scheme::InverseFrequency, AbsentClasses::Zero).is_err());
    for (batch, want) in [([0u8, 0, 0, 1], 0.25), ([0, 1, 1, 1], 0.5), ([255, 255, 255, 255], 0.5)] {
        let mut c = ClassCounts::new(2, Some(255));
        c.add_image(&batch).unwrap();
        run.update(&c).unwrap();
        assert_eq!(run.frequencies().unwrap()[1], want);
    }
    assert!(run.weights(Scheme::MedianFrequency, AbsentClasses::Zero).is_err());
}

/// Large images take the histogram path for 8- and 16-bit labels: it must agree with the
/// label-by-label path of wider types, errors included.
#[test]
fn every_label_type_counts_the_same() {
    let mut rng = Rng::new(10);
    let n = 3 * 300_000;
    let wide: Vec<i64> = (0..n).map(|_| if rng.uniform() < 0.05 { 255 } else { rng.below(7) as i64 }).collect();
    let count = |v: &dyn Fn() -> Result<ClassCounts>| v().unwrap();
    let want = count(&|| ClassCounts::from_images(View::new(&wide, &[3, 300_000]).unwrap(), 7, Some(255)));
    macro_rules! same {
        ($t:ty) => {{
            let v: Vec<$t> = wide.iter().map(|&x| x as $t).collect();
            let got = ClassCounts::from_images(View::new(&v, &[3, 300_000]).unwrap(), 7, Some(255)).unwrap();
            assert_eq!(got, want, stringify!($t));
            let mut bad = v.clone();
            bad[400_123] = 9 as $t;
            bad[400_456] = 12 as $t;
            let err = ClassCounts::from_images(View::new(&bad, &[3, 300_000]).unwrap(), 7, Some(255)).unwrap_err();
            assert!(matches!(err, Error::TargetOutOfRange { index: 400_123, value: 9, .. }), "{err:?}");
        }};
    }
    same!(u8);
    same!(u16);
    same!(i16);
    same!(i32);
    let signed: Vec<i8> = wide.iter().map(|&x| if x == 255 { -1 } else { x as i8 }).collect();
    let got = ClassCounts::from_images(View::new(&signed, &[3, 300_000]).unwrap(), 7, Some(-1)).unwrap();
    assert_eq!(got.pixels(), want.pixels());
    assert_eq!(got.ignored(), want.ignored());
}
