//! Hot reload: each function file is watched (by modification time, and on SIGHUP); a
//! new module is compiled beside the old one and swapped in without dropping requests.
//! A module that fails to load leaves the old one serving.

use crate::{LoadedFunction, Runtime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// A function file and the module currently serving it.
#[derive(Debug)]
pub struct FunctionSlot {
    path: PathBuf,
    current: RwLock<Arc<LoadedFunction>>,
    loaded_mtime: Mutex<Option<SystemTime>>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl FunctionSlot {
    /// Loads the function at `path`.
    pub async fn load(runtime: &Runtime, path: &Path) -> Result<FunctionSlot, crate::LoadError> {
        let modified = mtime(path);
        let function = runtime.load_file(path).await?;
        Ok(FunctionSlot {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(function)),
            loaded_mtime: Mutex::new(modified),
        })
    }

    /// The module serving now; in-flight invocations keep theirs across a swap.
    pub fn current(&self) -> Arc<LoadedFunction> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The function file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads when the file changed (or always, with `force`). Returns whether a new
    /// module was swapped in.
    pub async fn reload(&self, runtime: &Runtime, force: bool) -> bool {
        let modified = mtime(&self.path);
        if !force && modified == *self.loaded_mtime.lock().unwrap_or_else(|e| e.into_inner()) {
            return false;
        }
        // Remember the attempt either way: a broken file is reported once, not every second.
        *self.loaded_mtime.lock().unwrap_or_else(|e| e.into_inner()) = modified;
        match runtime.load_file(&self.path).await {
            Ok(function) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(function);
                tracing::info!(path = %self.path.display(), "function reloaded");
                true
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "function not reloaded; the previous version keeps serving");
                false
            }
        }
    }
}
