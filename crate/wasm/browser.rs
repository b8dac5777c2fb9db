//! What only the browser has: its clock, user-timing marks, whether it exposes WebGPU, and the
//! conversions of Rust values and errors to JavaScript ones.

use serde::Serialize;

use crate::error_code::ErrorCode;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The page's clock, in milliseconds (`std::time::Instant` panics on wasm32).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub(super) fn performance_now() -> f64;
    /// A user-timing mark: Chrome's trace shows it inside the frame's main-thread work.
    #[wasm_bindgen(js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str);
    #[wasm_bindgen(js_namespace = performance, js_name = clearMarks)]
    fn performance_clear_marks(name: &str);
}

/// The user-timing mark dropped when a new digit is drawn (CPU: painted; GPU: its draw submitted),
/// which `npm run bench:browser` finds in Chrome's trace to time the frame that shows the digit.
pub const DIGIT_MARK: &str = "digit-drawn";

/// Drops [`DIGIT_MARK`], cleared at once: the trace keeps it, the page need not.
pub(super) fn mark_digit_drawn() {
    performance_mark(DIGIT_MARK);
    performance_clear_marks(DIGIT_MARK);
}

/// Whether this browser exposes WebGPU at all (`navigator.gpu`; absent in browsers without it,
/// where it is switched off, and outside secure contexts).
pub(super) fn browser_has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"gpu".into()))
        .is_ok_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

pub(super) fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// A JavaScript `Error` with `e`'s English message, and its `code` and `params` (an object of
/// strings; [`crate::error_code`]) for the page to word it in the reader's language.
pub(super) fn coded_err(e: &impl ErrorCode) -> JsValue {
    let error: JsValue = JsError::new(&e.to_string()).into();
    let params = js_sys::Object::new();
    for (name, value) in e.params() {
        let _ = js_sys::Reflect::set(&params, &name.into(), &value.into());
    }
    let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
    let _ = js_sys::Reflect::set(&error, &"params".into(), &params);
    error
}

pub(super) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(v).map_err(js_err)
}

/// [`DIGIT_MARK`], for the mark the page drops itself when it paints a digit (the CPU path).
#[wasm_bindgen(js_name = digitMark)]
pub fn digit_mark() -> String {
    DIGIT_MARK.to_string()
}
