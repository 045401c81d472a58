//! The long-lived, incremental entry point: keeps file contents, per-node results and the
//! previous catalog between parses. A re-parse stats every file (or, given the changed
//! paths, only those), reads only the ones whose size or mtime moved, returns the previous catalog when nothing changed, updates it in
//! place when only model files were edited, and otherwise rebuilds with memoised results.

use crate::incremental::build::build_state;
use crate::incremental::cache::Cache;
use crate::incremental::{self, State};
use crate::ir::catalog::Catalog;
use crate::ir::error::ProjectError;
use crate::ir::options::ParseOptions;
use crate::load::{load_cached, load_changed, Changes, FileCache, Loaded};
use std::path::{Path, PathBuf};

/// An incremental dbt parser for one set of options.
#[derive(Default)]
pub struct Engine {
    opts: ParseOptions,
    dir: Option<PathBuf>,
    files: FileCache,
    cache: Cache,
    state: Option<State>,
    /// how the last successful parse was done
    last: Option<ParsePath>,
}

/// How [`Engine::parse`] produced its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsePath {
    /// the previous catalog, updated in place for the edited files only
    InPlace,
    /// a full rebuild (first parse, structural or project-wide change), memoised per node
    Rebuilt,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.dir)
            .field("cache", &self.cache)
            .field("parsed", &self.state.is_some())
            .finish()
    }
}

impl Engine {
    pub fn new(opts: ParseOptions) -> Self {
        Self {
            opts,
            ..Self::default()
        }
    }

    /// Parses `dir`, reusing unchanged files and per-node results from earlier parses.
    /// Parsing a different directory starts from an empty cache. Whichever path it takes,
    /// the catalog's `errors` are the complete current list of file and node errors, with
    /// paths relative to `dir` (an error too names paths relative to `dir`).
    pub fn parse(&mut self, dir: &Path) -> Result<&Catalog, ProjectError> {
        if self.dir.as_deref() != Some(dir) {
            self.files = FileCache::default();
            self.cache = Cache::default();
            self.state = None;
            self.dir = Some(dir.to_path_buf());
        }
        let loaded = match load_cached(dir, &mut self.files) {
            Ok((_, loaded, changes)) => (loaded, changes),
            Err(e) => {
                // the file cache may be half-updated: start over next time
                self.files = FileCache::default();
                self.state = None;
                self.last = None;
                let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                return Err(e.relative_to(&canonical).relative_to(dir));
            }
        };
        Ok(self.update(loaded))
    }

    /// Like [`parse`](Self::parse) for a caller that knows which files changed since the
    /// previous parse of `dir` (`changed`: paths relative to `dir`, e.g. a git diff's, which
    /// may name files the project does not read). Only those files are read; nothing else is
    /// listed or stat-ed. Files added or deleted where the project reads files, project or
    /// package files, or no previous parse of `dir` take the full [`parse`](Self::parse).
    /// The result equals what `parse` gives when `changed` names every file that changed.
    pub fn parse_changed<P: AsRef<Path>>(
        &mut self,
        dir: &Path,
        changed: &[P],
    ) -> Result<&Catalog, ProjectError> {
        if self.dir.as_deref() != Some(dir) || self.state.is_none() {
            return self.parse(dir);
        }
        match load_changed(dir, &mut self.files, changed) {
            Some(loaded) => Ok(self.update(loaded)),
            None => self.parse(dir),
        }
    }

    /// Brings the state up to `loaded`: in place when the changes allow it, else rebuilt.
    fn update(&mut self, (loaded, changes): (Loaded, Changes)) -> &Catalog {
        let previous = self.state.take().and_then(|mut s| {
            incremental::apply(&mut s, &loaded, &changes, &self.opts, &mut self.cache).then_some(s)
        });
        let (state, path) = match previous {
            Some(s) => (s, ParsePath::InPlace),
            None => (
                build_state(&loaded, &self.opts, &mut self.cache),
                ParsePath::Rebuilt,
            ),
        };
        self.last = Some(path);
        &self.state.insert(state).catalog
    }

    /// How the last successful parse was done (tests and the benchmark check the in-place
    /// path is taken where it should be).
    pub fn last_path(&self) -> Option<ParsePath> {
        self.last
    }

    /// The catalog of the last successful parse.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.state.as_ref().map(|s| &s.catalog)
    }
}
