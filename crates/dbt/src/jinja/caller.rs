//! `caller(...)` with arguments, across macros. Every macro runs in its own minijinja state,
//! and a `{% call(x) m() %}` body is a macro of the *calling* state, which minijinja lets run
//! only there. A body without parameters is rendered up front (context.rs); one with
//! parameters cannot be, so `m` gets a [`LazyCaller`] that runs the body in the calling state
//! when `m` calls it, with `m`'s arguments. The calling state is alive for exactly as long as
//! `m` runs (its frame is on this thread's stack below `m`'s), and [`CallerFrame`] records it
//! for that time only; a `LazyCaller` that outlives it answers an error.

use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

thread_local! {
    /// (frame id, calling state) for every macro call in progress on this thread that was
    /// handed a `LazyCaller`
    static FRAMES: RefCell<Vec<(u64, *const ())>> = const { RefCell::new(Vec::new()) };
    static NEXT_FRAME: Cell<u64> = const { Cell::new(1) };
}

/// Records `state` as the calling state while the callee runs; dropped when it returns.
pub(super) struct CallerFrame {
    id: u64,
}

impl CallerFrame {
    pub(super) fn enter(state: &State<'_, '_>) -> Self {
        let id = NEXT_FRAME.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
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
        // SAFETY: the pointer was taken from a live `&State` by `CallerFrame::enter`, and the
        // frame is removed (on drop) before that borrow ends: the calling `MacroFn::call`
        // holds both the state reference and the `CallerFrame` for the whole callee run,
        // on this thread, and a frame is only looked up while it is registered.
        let state: &State<'_, '_> = unsafe { &*(ptr as *const State<'_, '_>) };
        self.caller.call(state, args)
    }
}
