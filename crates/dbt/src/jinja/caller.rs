//! `caller(...)` with arguments, across macros. Every macro runs in its own minijinja state,
//! and a `{% call(x) m() %}` body is a macro of the *calling* state, which minijinja lets run
//! only there. A body without parameters is rendered up front (context.rs); one with
//! parameters cannot be, so `m` gets a [`LazyCaller`] that runs the body in the calling state
//! when `m` calls it, with `m`'s arguments. The calling state is alive for exactly as long as
//! `m` runs (its frame is on this thread's stack below `m`'s), and [`CallerFrame`] records it
//! for that time only; a `LazyCaller` that outlives it answers an error.
//!
//! Why `unsafe`: minijinja runs a call-block body only in the exact `State` that defined it
//! (`Macro::call` checks the state's id), and hands a callee no way to reach its caller's
//! state; a `&State` cannot be kept anywhere `'static` without erasing its lifetimes. The
//! one `unsafe` block turns the recorded pointer back into a `&State` while its frame is
//! registered; see its SAFETY comment for why that reference is live and unaliased-mutably.

use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

thread_local! {
    /// (frame id, calling state) for every macro call in progress on this thread that was
    /// handed a `LazyCaller`
    static FRAMES: RefCell<Vec<(u64, *const ())>> = const { RefCell::new(Vec::new()) };
}

/// Frame ids, unique across threads: a `LazyCaller` that reached another thread (`Value`s
/// are `Send`) finds no frame there, rather than another call's state.
static NEXT_FRAME: AtomicU64 = AtomicU64::new(1);

/// Records `state` as the calling state while the callee runs; dropped when it returns.
pub(super) struct CallerFrame {
    id: u64,
}

impl CallerFrame {
    pub(super) fn enter(state: &State<'_, '_>) -> Self {
        let id = NEXT_FRAME.fetch_add(1, Ordering::Relaxed);
        let ptr = state as *const State<'_, '_> as *const ();
        FRAMES.with(|f| f.borrow_mut().push((id, ptr)));
        Self { id }
    }

    /// The caller body `caller`, callable with arguments while this frame lasts.
    pub(super) fn lazy(&self, caller: Value) -> Value {
        Value::from_object(LazyCaller {
            caller,
            frame: self.id,
        })
    }
}

impl Drop for CallerFrame {
    fn drop(&mut self) {
        FRAMES.with(|f| f.borrow_mut().retain(|(id, _)| *id != self.id));
    }
}

/// Whether a `{% call(...) %}` body declares parameters.
pub(super) fn takes_arguments(caller: &Value) -> bool {
    caller
        .get_attr("arguments")
        .ok()
        .and_then(|a| a.len())
        .is_some_and(|n| n > 0)
}

/// A call-block body with parameters, run in its own (calling) state when called.
#[derive(Debug)]
pub(super) struct LazyCaller {
    caller: Value,
    frame: u64,
}

impl Object for LazyCaller {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let ptr = FRAMES.with(|f| {
            f.borrow()
                .iter()
                .find(|(id, _)| *id == self.frame)
                .map(|(_, p)| *p)
        });
        let Some(ptr) = ptr else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "caller() called after the macro it was passed to returned",
            ));
        };
        // SAFETY: the pointer was taken from a `&State` by `CallerFrame::enter`, on this thread
        // (FRAMES is thread-local and ids are never reused, so the entry found is that one).
        // The entry is removed when the `CallerFrame` drops, also on unwinding, and
        // `MacroFn::call` keeps the frame alive only inside the closure that runs the callee,
        // while the `&State` it was made from is still borrowed by that same call: so the
        // `State` is alive here. Only shared references to it exist (minijinja's own API
        // takes `&State` and mutates through interior cells, as when a macro re-enters its own
        // template's state), and the reference made here is used for this one call and not
        // kept: `Macro::call` returns an owned `Value`, so no erased lifetime escapes.
        let state: &State<'_, '_> = unsafe { &*(ptr as *const State<'_, '_>) };
        self.caller.call(state, args)
    }
}
