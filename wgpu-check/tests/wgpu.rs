#[test]
fn placeholder_build() {}
