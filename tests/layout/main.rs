//! The workspace's layout, checked: no import circle between the files of
//! any crate, and each module of `tensorswap-core` uses only its own layer
//! and the layers below (the table in `swap-api/src/lib.rs`).
//!
//! The check reads the sources (`use` trees and `crate::`, `super::` and
//! `self::` paths, outside comments, strings and `#[cfg(test)]` modules),
//! resolves every path to the file that defines its item (through
//! re-exports), and fails naming the files and the lines of each upward
//! use or circle. The graph is built by `graph.rs` beside it.

mod graph;

use std::path::Path;

use graph::{Crate, Graph};

/// The layers of `tensorswap-core`, from the bottom up (its crate docs
/// say why); a module not listed here fails the test.
const CORE_LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "error",
            "rejected",
            "pending",
            "fault",
            "ds_config",
            "config",
            "sys",
            "sync",
        ],
    ),
    ("host memory", &["buffer", "tensor", "pinning"]),
    ("storage", &["storage"]),
    (
        "devices",
        &[
            "device",
            "device_buffer",
            "owner",
            "ext",
            "transfer",
            "faulty",
        ],
    ),
    ("pools", &["pool"]),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_crate_has_an_import_circle() {
    let crates = Crate::all_in(root()).expect("reading the workspace");
    assert!(crates.len() >= 10, "found only {} crates", crates.len());
    let mut circles = Vec::new();
    for krate in &crates {
        let graph = Graph::of(krate).expect("reading a crate");
        for circle in graph.circles() {
            circles.push(format!("{}: {}", krate.name, graph.describe(&circle)));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles (each file reaches the others through its uses):\n{}",
        circles.join("\n")
    );
}

#[test]
fn core_modules_use_only_their_layer_and_those_below() {
    let krate = Crate::at(root(), &root().join("swap-api/src"), "tensorswap-core");
    let graph = Graph::of(&krate).expect("reading tensorswap-core");
    let errors = upward_uses(&graph, CORE_LAYERS);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A lower layer using a higher one is found (the check can fail).
#[test]
fn an_upward_use_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("low")).expect("mkdir");
    let files = [
        ("lib.rs", "mod low;\nmod high;\npub use high::High;\n"),
        (
            "low/mod.rs",
            "mod inner;\npub use inner::Low;\n#[cfg(test)]\nmod tests {\n    use crate::high::High;\n}\n",
        ),
        (
            "low/inner.rs",
            concat!(
                "// crate::high::High in a comment is not a use\n",
                "const S: &str = r#\"crate::high \"#; const C: char = '\"'; const T: &str = \"crate::high\";\n",
                "pub struct Low(crate::High);\n",
            ),
        ),
        ("high.rs", "use crate::low::Low;\npub struct High(Low);\n"),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("write");
    }
    let krate = Crate::at(dir.path(), &src, "toy");
    let graph = Graph::of(&krate).expect("graph");
    let errors = upward_uses(&graph, &[("low", &["low"]), ("high", &["high"])]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("src/low/inner.rs:3") && errors[0].contains("src/high.rs"),
        "{}",
        errors[0]
    );
    let circles = graph.circles();
    assert_eq!(circles.len(), 1, "high and low/inner use each other");
}

/// Every use of a file of a higher layer, as "file:line uses file".
fn upward_uses(graph: &Graph, layers: &[(&str, &[&str])]) -> Vec<String> {
    let layer_of = |file: usize| -> Option<usize> {
        let top = graph.top_module(file)?;
        layers
            .iter()
            .position(|(_, modules)| modules.contains(&top))
    };
    let mut errors = Vec::new();
    for file in 0..graph.len() {
        let Some(top) = graph.top_module(file) else {
            continue;
        };
        let Some(own) = layer_of(file) else {
            errors.push(format!(
                "{}: module `{top}` is in no layer",
                graph.name(file)
            ));
            continue;
        };
        for (target, line) in graph.uses(file) {
            if let Some(used) = layer_of(target) {
                if used > own {
                    errors.push(format!(
                        "{}:{line} ({}) uses {} ({})",
                        graph.name(file),
                        layers[own].0,
                        graph.name(target),
                        layers[used].0
                    ));
                }
            }
        }
    }
    errors
}
