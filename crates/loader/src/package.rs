//! The Cloacina package ABI on top of a [`GuardedLibrary`].

use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Arc;

use crate::error::{LoadError, TaskError};
use crate::guarded::GuardedLibrary;

/// Upper bound on `task_count` accepted from a package.
pub const MAX_TASK_COUNT: u32 = 100_000;
/// Upper bound on any metadata string (bytes, without the NUL).
pub const MAX_METADATA_STRING: usize = 64 << 20;
/// The result buffer size Cloacina's own host uses (10 MiB).
pub const DEFAULT_RESULT_CAPACITY: u32 = 10 << 20;

pub const SYM_GET_TASK_METADATA: &str = "cloacina_get_task_metadata";
pub const SYM_EXECUTE_TASK: &str = "cloacina_execute_task";

#[repr(C)]
struct RawTaskMetadata {
    index: u32,
    local_id: *const c_char,
    namespaced_id_template: *const c_char,
    dependencies_json: *const c_char,
    description: *const c_char,
    source_location: *const c_char,
}

#[repr(C)]
struct RawPackageTasks {
    task_count: u32,
    tasks: *const RawTaskMetadata,
    package_name: *const c_char,
    package_description: *const c_char,
    package_author: *const c_char,
    workflow_fingerprint: *const c_char,
    graph_data_json: *const c_char,
}

type GetMetadataFn = unsafe extern "C" fn() -> *const RawPackageTasks;
type ExecuteTaskFn =
    unsafe extern "C" fn(*const c_char, u32, *const c_char, u32, *mut u8, u32, *mut u32) -> i32;

/// One task, copied out of the library. Null C strings become `None`, except `local_id`, which
/// is required (a null `local_id` is an `InvalidMetadata` error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMetadata {
    pub index: u32,
    pub local_id: String,
    pub namespaced_id_template: Option<String>,
    pub dependencies_json: Option<String>,
    pub description: Option<String>,
    pub source_location: Option<String>,
}

/// Package metadata, copied out of the library (owned; outlives the library).
/// Null C strings become `None`. Invalid UTF-8 anywhere is an `InvalidMetadata` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageMetadata {
    pub package_name: Option<String>,
    pub package_description: Option<String>,
    pub package_author: Option<String>,
    pub workflow_fingerprint: Option<String>,
    pub graph_data_json: Option<String>,
    pub tasks: Vec<TaskMetadata>,
}

/// A loaded, verified workflow package. Cheap to clone; every clone (and every in-flight call)
/// holds an `Arc` to the library, so the library stays loaded until the last clone is dropped —
/// "closing" a package while a worker thread executes a task cannot unload it under that task.
#[derive(Clone)]
pub struct WorkflowPackage {
    lib: Arc<GuardedLibrary>,
    get_metadata: GetMetadataFn,
    execute: ExecuteTaskFn,
}

impl std::fmt::Debug for WorkflowPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowPackage")
            .field("lib", &self.lib)
            .finish()
    }
}

fn copy_cstr(p: *const c_char, what: &str) -> Result<Option<String>, LoadError> {
    if p.is_null() {
        return Ok(None);
    }
    // Bounded scan: an unterminated string errors out at the cap instead of running forever.
    // SAFETY: `p` is non-null and, by the package ABI, points to a string inside the loaded
    // library, which the caller keeps loaded; strnlen reads at most the cap.
    let n = unsafe { libc::strnlen(p, MAX_METADATA_STRING + 1) };
    if n > MAX_METADATA_STRING {
        return Err(LoadError::InvalidMetadata(format!(
            "{what} is longer than {MAX_METADATA_STRING} bytes"
        )));
    }
    // SAFETY: a NUL was found within the first `n + 1` bytes (n <= the cap), so the string is
    // terminated; it is copied out before this function returns.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(e) => Err(LoadError::InvalidMetadata(format!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))),
    }
}

impl WorkflowPackage {
    /// Wraps a loaded library; both ABI symbols must be defined by it.
    pub fn new(lib: GuardedLibrary) -> Result<Self, LoadError> {
        Self::from_arc(Arc::new(lib))
    }

    pub fn from_arc(lib: Arc<GuardedLibrary>) -> Result<Self, LoadError> {
        // SAFETY: the type matches the documented ABI (cloacina_package.h); the pointer is only
        // called while `lib` lives (every WorkflowPackage holds the Arc).
        let get_metadata: GetMetadataFn = unsafe { lib.symbol(SYM_GET_TASK_METADATA)? };
        // SAFETY: as above, for `cloacina_execute_task`.
        let execute: ExecuteTaskFn = unsafe { lib.symbol(SYM_EXECUTE_TASK)? };
        Ok(WorkflowPackage {
            lib,
            get_metadata,
            execute,
        })
    }

    pub fn library(&self) -> &Arc<GuardedLibrary> {
        &self.lib
    }

    /// The size and digests of the loaded bytes.
    pub fn digests(&self) -> &cloacina_sign_core::digest::PackageDigests {
        self.lib.digests()
    }

    /// Calls `cloacina_get_task_metadata` and copies everything out.
    pub fn metadata(&self) -> Result<PackageMetadata, LoadError> {
        let _keep = Arc::clone(&self.lib);
        // SAFETY: an ABI function of the loaded, cleared package, called with its documented
        // signature while `_keep` holds the library loaded.
        let raw = unsafe { (self.get_metadata)() };
        if raw.is_null() {
            return Err(LoadError::InvalidMetadata(
                "cloacina_get_task_metadata returned a null pointer".into(),
            ));
        }
        // SAFETY: non-null (checked above); by the ABI it points to a static structure of the
        // library, which stays loaded while `_keep` lives (longer than this borrow).
        let raw = unsafe { &*raw };
        if raw.task_count > MAX_TASK_COUNT {
            return Err(LoadError::InvalidMetadata(format!(
                "task_count {} exceeds the limit of {MAX_TASK_COUNT}",
                raw.task_count
            )));
        }
        if raw.task_count > 0 && raw.tasks.is_null() {
            return Err(LoadError::InvalidMetadata(format!(
                "task_count is {} but the tasks pointer is null",
                raw.task_count
            )));
        }
        let raw_tasks: &[RawTaskMetadata] = if raw.task_count == 0 {
            &[]
        } else {
            // SAFETY: non-null with task_count > 0 (checked above, count bounded by
            // MAX_TASK_COUNT); by the ABI `tasks` is an array of that many entries in the loaded
            // library, alive while `_keep` lives.
            unsafe { std::slice::from_raw_parts(raw.tasks, raw.task_count as usize) }
        };
        let mut tasks = Vec::with_capacity(raw_tasks.len());
        for (i, t) in raw_tasks.iter().enumerate() {
            let local_id =
                copy_cstr(t.local_id, &format!("tasks[{i}].local_id"))?.ok_or_else(|| {
                    LoadError::InvalidMetadata(format!("tasks[{i}].local_id is null"))
                })?;
            tasks.push(TaskMetadata {
                index: t.index,
                local_id,
                namespaced_id_template: copy_cstr(
                    t.namespaced_id_template,
                    &format!("tasks[{i}].namespaced_id_template"),
                )?,
                dependencies_json: copy_cstr(
                    t.dependencies_json,
                    &format!("tasks[{i}].dependencies_json"),
                )?,
                description: copy_cstr(t.description, &format!("tasks[{i}].description"))?,
                source_location: copy_cstr(
                    t.source_location,
                    &format!("tasks[{i}].source_location"),
                )?,
            });
        }
        Ok(PackageMetadata {
            package_name: copy_cstr(raw.package_name, "package_name")?,
            package_description: copy_cstr(raw.package_description, "package_description")?,
            package_author: copy_cstr(raw.package_author, "package_author")?,
            workflow_fingerprint: copy_cstr(raw.workflow_fingerprint, "workflow_fingerprint")?,
            graph_data_json: copy_cstr(raw.graph_data_json, "graph_data_json")?,
            tasks,
        })
    }

    /// Runs one task with a `result_capacity`-byte result buffer and returns the output JSON.
    ///
    /// 0 -> `Ok(output)`; -1 -> `TaskError::Failed(error_json)`; any other code ->
    /// `TaskError::AbiError(code)`. A reported length above the capacity or non-UTF-8 output ->
    /// `InvalidOutput`; output that fills the buffer exactly and does not parse as JSON ->
    /// `Truncated` (both for successes and failures).
    pub fn execute_task(
        &self,
        task_name: &str,
        context_json: &str,
        result_capacity: u32,
    ) -> Result<String, TaskError> {
        let name_len = u32::try_from(task_name.len())
            .map_err(|_| TaskError::InvalidInput("task name longer than u32::MAX bytes".into()))?;
        let ctx_len = u32::try_from(context_json.len())
            .map_err(|_| TaskError::InvalidInput("context longer than u32::MAX bytes".into()))?;
        let mut buf = vec![0u8; (result_capacity as usize).max(1)];
        let mut result_len: u32 = 0;
        let _keep = Arc::clone(&self.lib);
        // SAFETY: an ABI function of the loaded package, called with its documented signature
        // while `_keep` holds the library loaded: the name and context are valid for their
        // lengths, the result buffer holds `result_capacity` writable bytes (at least 1
        // allocated) and `result_len` is a valid out-pointer.
        let code = unsafe {
            (self.execute)(
                task_name.as_ptr() as *const c_char,
                name_len,
                context_json.as_ptr() as *const c_char,
                ctx_len,
                buf.as_mut_ptr(),
                result_capacity,
                &mut result_len,
            )
        };
        if code != 0 && code != -1 {
            return Err(TaskError::AbiError(code));
        }
        if result_len > result_capacity {
            return Err(TaskError::InvalidOutput(format!(
                "the package reported {result_len} result bytes but the buffer holds {result_capacity}"
            )));
        }
        buf.truncate(result_len as usize);
        if result_len == result_capacity
            && serde_json::from_slice::<serde_json::Value>(&buf).is_err()
        {
            return Err(TaskError::Truncated {
                capacity: result_capacity,
            });
        }
        let text = String::from_utf8(buf).map_err(|e| {
            TaskError::InvalidOutput(format!(
                "the result is not valid UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        if code == -1 {
            Err(TaskError::Failed(text))
        } else {
            Ok(text)
        }
    }
}
