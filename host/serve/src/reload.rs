//! Hot reload: each function file is watched (by modification time, and on SIGHUP); a
//! new module is compiled beside the old one and swapped in without dropping requests.
//! A module that fails to load leaves the old one serving.

use segfn_engine::{LoadedFunction, Runtime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// A function file and the module currently serving it.
#[derive(Debug)]
pub struct FunctionSlot {
    path: PathBuf,
    current: RwLock<Arc<LoadedFunction>>,
    /// The file's version when last loaded (or tried), and when last polled.
    versions: Mutex<(Option<Version>, Option<Version>)>,
}

/// What tells a changed file: modification time and size.
type Version = (SystemTime, u64);

fn version(path: &Path) -> Option<Version> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

impl FunctionSlot {
    /// Loads the function at `path`.
    pub async fn load(
        runtime: &Runtime,
        path: &Path,
    ) -> Result<FunctionSlot, segfn_engine::LoadError> {
        let loaded = version(path);
        let function = runtime.load_file(path).await?;
        Ok(FunctionSlot {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(function)),
            versions: Mutex::new((loaded, loaded)),
        })
    }

    /// The module serving now; in-flight invocations keep theirs across a swap.
    pub fn current(&self) -> Arc<LoadedFunction> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads when the file changed and has stayed the same for one poll (so a file
    /// being written is not read half-way), or always with `force`. Returns whether a
    /// new module was swapped in (`None`: nothing to do).
    pub async fn reload(&self, runtime: &Runtime, force: bool) -> Option<bool> {
        let now = version(&self.path);
        {
            let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
            let (loaded, polled) = *versions;
            versions.1 = now;
            if !force && (now == loaded || now != polled) {
                return None;
            }
            // Remember the attempt either way: a broken file is reported once.
            versions.0 = now;
        }
        match runtime.load_file(&self.path).await {
            Ok(function) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(function);
                tracing::info!(path = %self.path.display(), "function reloaded");
                Some(true)
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "function not reloaded; the previous version keeps serving");
                Some(false)
            }
        }
    }
}
