//! Which file of a crate uses which: the module tree from the file tree,
//! each file's `use` bindings and paths, resolved through re-exports to the
//! file that defines the item. A reading of the sources, not a compiler:
//! macros, `#[path]` and items of inline modules other than `#[cfg(test)]`
//! ones are taken at face value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

/// One crate: its name and the folder of its root file.
pub(crate) struct Crate {
    /// The package name, for messages.
    pub(crate) name: String,
    /// The repository root (names in messages are relative to it).
    root: PathBuf,
    /// The folder holding `lib.rs` or `main.rs` (or the `[lib] path`).
    src: PathBuf,
    /// The root file's name in `src`.
    root_file: String,
}

impl Crate {
    /// The crate whose root file is `src/lib.rs` or `src/main.rs`.
    pub(crate) fn at(root: &Path, src: &Path, name: &str) -> Crate {
        let root_file = if src.join("lib.rs").exists() {
            "lib.rs"
        } else {
            "main.rs"
        };
        Crate {
            name: name.to_string(),
            root: root.to_path_buf(),
            src: src.to_path_buf(),
            root_file: root_file.to_string(),
        }
    }

    /// Every package under `root` (a `Cargo.toml` with a `[package]`),
    /// skipping build outputs and hidden folders.
    pub(crate) fn all_in(root: &Path) -> io::Result<Vec<Crate>> {
        let mut found = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            let manifest = dir.join("Cargo.toml");
            if manifest.exists() {
                if let Some(krate) =
                    Self::from_manifest(root, &dir, &std::fs::read_to_string(&manifest)?)
                {
                    found.push(krate);
                }
            }
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if entry.file_type()?.is_dir()
                    && !name.starts_with('.')
                    && !["target", "src", "tests", "node_modules"].contains(&&*name)
                {
                    todo.push(entry.path());
                }
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn from_manifest(root: &Path, dir: &Path, manifest: &str) -> Option<Crate> {
        let mut section = "";
        let mut name = None;
        let mut lib_path = None;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
            } else if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().trim_matches('"');
                match (section, key.trim()) {
                    ("[package]", "name") => name = Some(value.to_string()),
                    ("[lib]", "path") => lib_path = Some(value.to_string()),
                    _ => {}
                }
            }
        }
        let name = name?;
        if let Some(path) = lib_path {
            let file = dir.join(path);
            return Some(Crate {
                name,
                root: root.to_path_buf(),
                src: file.parent()?.to_path_buf(),
                root_file: file.file_name()?.to_string_lossy().into_owned(),
            });
        }
        let src = dir.join("src");
        (src.join("lib.rs").exists() || src.join("main.rs").exists())
            .then(|| Crate::at(root, &src, &name))
    }
}

/// A binding's target: a path from the crate root, or something outside
/// the crate (std, a dependency).
#[derive(Clone, Debug)]
enum Target {
    Local(Vec<String>),
    External,
}

/// One source file: its module path and what its text binds and uses.
struct File {
    name: String,
    module: Vec<String>,
    /// Names bound by its `use` items (re-exports included).
    bindings: HashMap<String, Target>,
    /// Paths it uses (private `use` items and paths in code), with lines.
    uses: Vec<(Target, usize)>,
}

/// The files of one crate and the uses between them.
pub(crate) struct Graph {
    files: Vec<File>,
    by_module: HashMap<Vec<String>, usize>,
    edges: Vec<BTreeMap<usize, usize>>,
}

impl Graph {
    /// Reads and resolves every file of `krate` (test-only files left out).
    pub(crate) fn of(krate: &Crate) -> io::Result<Graph> {
        let mut graph = Graph {
            files: Vec::new(),
            by_module: HashMap::new(),
            edges: Vec::new(),
        };
        graph.load(krate, &krate.src.join(&krate.root_file), Vec::new())?;
        graph.edges = (0..graph.files.len())
            .map(|file| graph.resolve_uses(file))
            .collect();
        Ok(graph)
    }

    /// The number of files.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// A file's path relative to the repository root.
    pub(crate) fn name(&self, file: usize) -> &str {
        &self.files[file].name
    }

    /// The top-level module a file belongs to (`None` for the root file).
    pub(crate) fn top_module(&self, file: usize) -> Option<&str> {
        self.files[file].module.first().map(String::as_str)
    }

    /// The files `file` uses, each with the first line that uses it.
    pub(crate) fn uses(&self, file: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.edges[file].iter().map(|(&to, &line)| (to, line))
    }

    /// The circles: groups of two or more files that reach each other.
    pub(crate) fn circles(&self) -> Vec<Vec<usize>> {
        let reach: Vec<BTreeSet<usize>> = (0..self.len()).map(|f| self.reachable(f)).collect();
        let mut seen = BTreeSet::new();
        let mut circles = Vec::new();
        for file in 0..self.len() {
            if seen.contains(&file) {
                continue;
            }
            let group: Vec<usize> = (0..self.len())
                .filter(|&other| {
                    other == file || (reach[file].contains(&other) && reach[other].contains(&file))
                })
                .collect();
            seen.extend(group.iter().copied());
            if group.len() > 1 {
                circles.push(group);
            }
        }
        circles
    }

    /// A circle as "a.rs:L -> b.rs:L -> ...": each file with the line of
    /// one of its uses of another file in the circle.
    pub(crate) fn describe(&self, circle: &[usize]) -> String {
        circle
            .iter()
            .map(|&file| {
                let (to, line) = self
                    .uses(file)
                    .find(|(to, _)| circle.contains(to))
                    .expect("a file in a circle uses another");
                format!("{}:{line} uses {}", self.name(file), self.name(to))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn reachable(&self, from: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(file) = todo.pop() {
            for (to, _) in self.uses(file) {
                if seen.insert(to) {
                    todo.push(to);
                }
            }
        }
        seen
    }

    /// Reads `path` as `module`, then the modules it declares.
    fn load(&mut self, krate: &Crate, path: &Path, module: Vec<String>) -> io::Result<()> {
        let text = std::fs::read_to_string(path)?;
        let code = strip(&text);
        let (code, test_modules) = without_test_modules(&code);
        let dir = if module.is_empty() || path.ends_with("mod.rs") {
            path.parent().unwrap_or(path).to_path_buf()
        } else {
            path.with_extension("")
        };
        let children = declared_modules(&code);
        let mut file = File {
            name: path
                .strip_prefix(&krate.root)
                .unwrap_or(path)
                .display()
                .to_string(),
            module: module.clone(),
            bindings: HashMap::new(),
            uses: Vec::new(),
        };
        let is_child = |first: &str| children.contains(first);
        read_uses(&code, &module, &is_child, &mut file);
        self.by_module.insert(module.clone(), self.files.len());
        self.files.push(file);
        for child in children.difference(&test_modules) {
            let mut child_module = module.clone();
            child_module.push(child.clone());
            let flat = dir.join(format!("{child}.rs"));
            let nested = dir.join(child).join("mod.rs");
            let child_path = if flat.exists() { flat } else { nested };
            if child_path.exists() {
                self.load(krate, &child_path, child_module)?;
            }
        }
        Ok(())
    }

    fn resolve_uses(&self, file: usize) -> BTreeMap<usize, usize> {
        let mut edges = BTreeMap::new();
        for (target, line) in &self.files[file].uses {
            if let Target::Local(path) = target {
                if let Some(to) = self.lookup(path, 0) {
                    if to != file {
                        edges.entry(to).or_insert(*line);
                    }
                }
            }
        }
        edges
    }

    /// The file defining the item at `path` (from the crate root).
    fn lookup(&self, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let mut module: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let mut deeper = module.clone();
            deeper.push(segment.clone());
            if self.by_module.contains_key(&deeper) {
                module = deeper;
                continue;
            }
            let here = *self.by_module.get(&module)?;
            return match self.files[here].bindings.get(segment) {
                Some(Target::Local(bound)) if bound[..] != path[..=i] => {
                    let mut full = bound.clone();
                    full.extend(path[i + 1..].iter().cloned());
                    self.lookup(&full, depth + 1)
                }
                Some(_) => None,
                None => Some(here),
            };
        }
        self.by_module.get(&module).copied()
    }
}

/// `text` without comments and string, raw string and char literals
/// (their quotes kept), lines kept in place.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    // Skips `chars[from..]` up to the end of `closing`, keeping newlines;
    // with `escapes`, a backslash hides the character after it.
    let skip_to = |out: &mut String, from: usize, closing: &[char], escapes: bool| -> usize {
        let mut i = from;
        while i < chars.len() {
            if chars[i..].starts_with(closing) {
                return i + closing.len();
            }
            if chars[i] == '\n' {
                out.push('\n');
            }
            if escapes && chars[i] == '\\' {
                i += 1;
            }
            i += 1;
        }
        i
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        match c {
            '/' if next == Some('/') => i = skip_to(&mut out, i, &['\n'], false).saturating_sub(1),
            '/' if next == Some('*') => i = skip_to(&mut out, i + 2, &['*', '/'], false),
            '"' => {
                i = skip_to(&mut out, i + 1, &['"'], true);
                out.push_str("\"\"");
            }
            // r"..." and r#"..."#: closed by the quote and as many hashes.
            'r' if !after_word && matches!(next, Some('"' | '#')) => {
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                if chars.get(i + 1 + hashes) == Some(&'"') {
                    let mut closing = vec!['"'];
                    closing.extend(std::iter::repeat_n('#', hashes));
                    i = skip_to(&mut out, i + 2 + hashes, &closing, false);
                    out.push_str("\"\"");
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            // A char literal ('x', '\n'), not a lifetime ('a).
            '\'' if next == Some('\\') || chars.get(i + 2) == Some(&'\'') => {
                i = skip_to(&mut out, i + 1, &['\''], true);
                out.push_str("''");
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `code` with its `#[cfg(test)]` inline modules blanked, and the names of
/// its `#[cfg(test)] mod name;` declarations.
fn without_test_modules(code: &str) -> (String, BTreeSet<String>) {
    let mut out = String::with_capacity(code.len());
    let mut test_files = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let Some(decl) = item.strip_prefix("mod ") else {
            rest = after;
            continue;
        };
        let name: String = decl
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let decl_rest = decl[name.len()..].trim_start();
        if decl_rest.starts_with(';') {
            test_files.insert(name);
            rest = after;
            continue;
        }
        // An inline module: blank it up to its closing brace, lines kept.
        let start = after.len() - item.len();
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.extend(after[..end].chars().filter(|&c| c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    (out, test_files)
}

/// The names of the file modules `code` declares (`mod name;`).
fn declared_modules(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line
                .strip_prefix("pub ")
                .or_else(|| {
                    line.strip_prefix("pub(crate) ")
                        .or_else(|| line.strip_prefix("pub(super) "))
                })
                .unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// Reads the `use` items of `code` (bindings; private ones are uses too)
/// and the `crate::`/`super::`/`self::` paths elsewhere (uses).
fn read_uses(code: &str, module: &[String], is_child: &dyn Fn(&str) -> bool, file: &mut File) {
    let absolute = |path: &[String]| -> Target {
        let mut base: Vec<String>;
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => {
                base = Vec::new();
                rest = &path[1..];
            }
            Some("self") => {
                base = module.to_vec();
                rest = &path[1..];
            }
            Some("super") => {
                base = module.to_vec();
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(first) if is_child(first) => base = module.to_vec(),
            _ => return Target::External,
        }
        base.extend(rest.iter().cloned());
        Target::Local(base)
    };
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let mut rest_offset = 0;
    let mut code_outside_uses = String::with_capacity(code.len());
    while let Some(found) = find_use(&code[rest_offset..]) {
        let (start, body_start, public) = (rest_offset + found.0, rest_offset + found.1, found.2);
        let end = code[body_start..]
            .find(';')
            .map_or(code.len(), |e| body_start + e);
        code_outside_uses.push_str(&code[rest_offset..start]);
        code_outside_uses.extend(code[start..end].chars().filter(|&c| c == '\n'));
        let line = line_of(start);
        for (name, path) in expand(&code[body_start..end]) {
            let target = absolute(&path);
            if !public {
                file.uses.push((target.clone(), line));
            }
            if name != "*" {
                file.bindings.insert(name, target);
            }
        }
        rest_offset = end;
    }
    code_outside_uses.push_str(&code[rest_offset..]);
    for (line_index, line) in code_outside_uses.lines().enumerate() {
        for path in paths_in(line) {
            file.uses.push((absolute(&path), line_index + 1));
        }
    }
}

/// The next `use` item in `code`: (its start, its tree's start, public).
fn find_use(code: &str) -> Option<(usize, usize, bool)> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let at = from + at;
        from = at + 4;
        let before = code[..at].trim_end_matches([' ', '\t']);
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let prefix = &before[line_start..];
        let public = match prefix {
            "" => false,
            "pub" | "pub(crate)" | "pub(super)" => true,
            p if p.starts_with("pub(in ") => true,
            _ => continue,
        };
        return Some((line_start, at + 4, public));
    }
    None
}

/// The bindings of a `use` tree: (name bound, path), `self` and renames
/// resolved; a glob binds `*`.
fn expand(tree: &str) -> Vec<(String, Vec<String>)> {
    // One space between words, none around punctuation.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut tree = words.join(" ");
    for punct in ["::", "{", "}", ","] {
        tree = tree
            .replace(&format!(" {punct}"), punct)
            .replace(&format!("{punct} "), punct);
    }
    let mut out = Vec::new();
    expand_into(&tree, Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    let mut path = prefix;
    if let Some(open) = tree.find('{') {
        path.extend(
            tree[..open]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for part in split_top(inner) {
            expand_into(part, path.clone(), out);
        }
        return;
    }
    let (tree, rename) = match tree.split_once(" as ") {
        Some((tree, rename)) => (tree, Some(rename)),
        None => (tree, None),
    };
    for segment in tree.split("::").filter(|s| !s.is_empty()) {
        if segment != "self" || path.is_empty() {
            path.push(segment.to_string());
        }
    }
    let Some(last) = path.last().cloned() else {
        return;
    };
    let name = rename.map(String::from).unwrap_or(last);
    out.push((name, path));
}

/// `a,b{c,d},e` split at its top-level commas.
fn split_top(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The `crate::`, `super::` and `self::` paths in a line of code.
fn paths_in(line: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for head in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = line[from..].find(head) {
            let at = from + at;
            from = at + head.len();
            let boundary = line[..at].chars().next_back();
            if boundary.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let text: String = line[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            // A `#[macro_export]` macro lives at the crate root whichever
            // file defines it: its invocation is no use of a file.
            if line[at + text.len()..].starts_with('!') {
                continue;
            }
            let path: Vec<String> = text
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            paths.push(path);
        }
    }
    paths
}
