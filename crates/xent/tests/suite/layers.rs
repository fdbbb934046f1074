//! The layers of `src/` point one way: no file imports a file of a higher layer, and the files'
//! imports (`use crate::..`, `use super::..`, and paths `crate::..` in code) have no cycle.
//!
//! ```text
//! base:    error, sum, view, layout, float
//! kernel:  kernel
//! checks:  validate, par, reduction
//! api:     loss, weights, reference, lib.rs
//! ```
//! `mod` declarations are not imports; a `mod.rs` that re-exports its children imports them.
//! A file's unit tests (from its `#[cfg(test)]` module on) are left out: their `super` is the
//! file itself; so are the files compiled only for tests (`TEST_ONLY`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files compiled only under `cfg(test)`: the kernels' width tests split blocks as the callers do.
const TEST_ONLY: [&str; 1] = ["kernel/widths.rs"];

fn layer(top: &str) -> usize {
    match top {
        "error" | "sum" | "view" | "layout" | "float" => 0,
        "kernel" => 1,
        "validate" | "par" | "reduction" => 2,
        _ => 3,
    }
}

/// Module path of a source file: `kernel/tile.rs` -> [kernel, tile], `kernel/mod.rs` -> [kernel].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if m.last().is_some_and(|l| l == "mod" || l == "lib") {
        m.pop();
    }
    m
}

/// The longest prefix of `path` that names a module file.
fn resolve(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| files.contains_key(p))
}

/// Paths after `crate::` or `super::` in a line, braces expanded one level.
fn paths(line: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (root, start) in ["crate::", "super::"].iter().flat_map(|r| line.match_indices(r).map(move |(i, _)| (*r, i))) {
        if start > 0 && line[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &line[start + root.len()..];
        let base: Vec<String> = if root == "crate::" {
            vec![]
        } else {
            // `super` of `kernel/tile.rs` is `kernel`; of `kernel/simd/mod.rs` it is `kernel`.
            me[..me.len().saturating_sub(1)].to_vec()
        };
        let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let mut segs: Vec<String> = base;
        segs.extend(head.split("::").filter(|s| !s.is_empty()).map(String::from));
        let after = &rest[head.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            for item in group.split(',') {
                let mut p = segs.clone();
                p.extend(
                    item.trim().split("::").map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s != "self"),
                );
                out.push(p);
            }
        } else {
            out.push(segs);
        }
    }
    out
}

#[test]
fn source_files_import_no_higher_layer_and_no_cycle() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    let mut files = BTreeMap::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !TEST_ONLY.iter().any(|t| p.strip_prefix(&src).is_ok_and(|r| r == Path::new(t)))
            {
                files.insert(module_of(&src, &p), p);
            }
        }
    }
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (me, path) in &files {
        let is_mod_rs = path.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines().take_while(|l| l.trim() != "#[cfg(test)]" || is_mod_rs) {
            let code = line.split("//").next().unwrap();
            for p in paths(code, me) {
                let Some(target) = resolve(&files, &p) else { continue };
                if target == *me || target.is_empty() {
                    continue;
                }
                let (mine, theirs) = (me.first().map_or("lib", |s| s), &target[0]);
                if layer(theirs) > layer(mine) {
                    wrong.push(format!(
                        "{}: imports {} (a higher layer): {}",
                        path.display(),
                        target.join("::"),
                        line.trim()
                    ));
                }
                edges.entry(me.clone()).or_default().insert(target);
            }
        }
    }
    assert!(wrong.is_empty(), "imports that point up:\n{}", wrong.join("\n"));
    // Depth-first search for a cycle.
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let i = path.iter().position(|p| p == n).unwrap();
                return Some(path[i..].to_vec());
            }
            _ => {}
        }
        state.insert(n.clone(), 1);
        path.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in files.keys() {
        if let Some(c) = visit(n, &edges, &mut state, &mut Vec::new()) {
            let names: Vec<String> = c.iter().map(|p| p.join("::")).collect();
            panic!("import cycle: {} -> {}", names.join(" -> "), names[0]);
        }
    }
    println!(
        "layers: {} files, {} import edges, no cycle",
        files.len(),
        edges.values().map(|e| e.len()).sum::<usize>()
    );
}
