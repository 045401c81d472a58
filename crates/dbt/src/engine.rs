//! The long-lived, incremental entry point: keeps file contents and per-node results between
//! parses so re-parsing a checkout after a small change only redoes the affected work.

use crate::cache::Cache;
use crate::catalog::Catalog;
use crate::error::ProjectError;
use crate::loader::{load_cached, FileCache};
use crate::options::ParseOptions;
use crate::pipeline::build_catalog_cached;
use std::path::{Path, PathBuf};

/// An incremental dbt parser for one set of options.
#[derive(Debug, Default)]
pub struct Engine {
    opts: ParseOptions,
    dir: Option<PathBuf>,
    files: FileCache,
    cache: Cache,
    catalog: Option<Catalog>,
}

impl Engine {
    pub fn new(opts: ParseOptions) -> Self {
        Self {
            opts,
            ..Self::default()
        }
    }

    /// Parses `dir`, reusing unchanged files and per-node results from earlier parses.
    /// Parsing a different directory starts from an empty cache.
    pub fn parse(&mut self, dir: &Path) -> Result<&Catalog, ProjectError> {
        if self.dir.as_deref() != Some(dir) {
            self.files = FileCache::default();
            self.cache = Cache::default();
            self.dir = Some(dir.to_path_buf());
        }
        let (_, loaded) = load_cached(dir, &mut self.files)?;
        let catalog = build_catalog_cached(&loaded, &self.opts, &mut self.cache);
        Ok(self.catalog.insert(catalog))
    }

    /// The catalog of the last successful parse.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }
}
