//! Sticking to the bottom of the thread. While the reader is at the bottom (or has just sent),
//! the thread follows its content as it grows: a reply streaming in, a tool record opening, a
//! code block laying out, the window or on-screen keyboard changing the thread's height. A
//! reader who scrolls up stops following; new content then only shows the "New messages"
//! pill, which disappears when they come back down (by scrolling or by the pill).

use leptos::{html, prelude::*};

/// How close to the bottom counts as at the bottom (rounding of fractional pixels).
const AT_BOTTOM_PX: i32 = 2;

#[derive(Clone, Copy)]
pub struct Follow {
    scroller: NodeRef<html::Div>,
    /// Whether the view keeps to the bottom as content grows.
    pub following: RwSignal<bool>,
    /// Content arrived below the view while not following (the pill shows).
    pub unseen: RwSignal<bool>,
    /// The scroller's last scroll position and content height, to tell a reader scrolling up
    /// from content growing or shrinking.
    last_top: StoredValue<i32>,
    last_height: StoredValue<i32>,
}

/// Where a scroll position stands: what `on_scroll` decides from it (pure, unit-tested).
#[derive(Debug, PartialEq, Eq)]
enum Scrolled {
    /// At the bottom: follow (again).
    AtBottom,
    /// Moved up, away from the bottom: the reader wants to read back.
    Up,
    /// Anything else (moving down, not yet at the bottom): no change.
    Other,
}

fn classify(scroll_top: i32, scroll_height: i32, client_height: i32, last_top: i32) -> Scrolled {
    if scroll_height - scroll_top - client_height <= AT_BOTTOM_PX {
        Scrolled::AtBottom
    } else if scroll_top < last_top {
        Scrolled::Up
    } else {
        Scrolled::Other
    }
}

impl Follow {
    pub fn new(scroller: NodeRef<html::Div>) -> Self {
        Self {
            scroller,
            following: RwSignal::new(true),
            unseen: RwSignal::new(false),
            last_top: StoredValue::new(0),
            last_height: StoredValue::new(0),
        }
    }

    /// The reader scrolled (or the browser moved the view).
    pub fn on_scroll(self) {
        let Some(el) = self.scroller.get_untracked() else {
            return;
        };
        let top = el.scroll_top();
        match classify(
            top,
            el.scroll_height(),
            el.client_height(),
            self.last_top.get_value(),
        ) {
            Scrolled::AtBottom => {
                self.following.set(true);
                self.unseen.set(false);
            }
            Scrolled::Up => self.following.set(false),
            Scrolled::Other => {}
        }
        self.last_top.set_value(top);
    }

    /// The thread's content or its own size changed: keep to the bottom, or note what came.
    pub fn on_resize(self) {
        let Some(el) = self.scroller.get_untracked() else {
            return;
        };
        let height = el.scroll_height();
        if self.following.get_untracked() {
            el.set_scroll_top(height);
            self.last_top.set_value(el.scroll_top());
        } else if height > self.last_height.get_value() {
            self.unseen.set(true);
        }
        self.last_height.set_value(height);
    }

    /// Back to the bottom, following again (after a send, or the pill).
    pub fn jump_to_bottom(self) {
        self.following.set(true);
        self.unseen.set(false);
        request_animation_frame(move || self.on_resize());
    }

    /// Watches the thread (`scroller`) and its content (`content`) for size changes, for as
    /// long as the calling component lives.
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    pub fn observe(self, content: NodeRef<html::Ol>) {
        use send_wrapper::SendWrapper;
        use wasm_bindgen::{closure::Closure, JsCast};

        Effect::new(move |_| {
            let (Some(scroller), Some(content)) = (self.scroller.get(), content.get()) else {
                return;
            };
            // The entries are not needed (both elements are read again), and a closure of no
            // arguments shares its glue with the app's others (bundle size).
            let on_resize = Closure::<dyn FnMut()>::new(move || self.on_resize());
            let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref())
            else {
                return;
            };
            observer.observe(&scroller);
            observer.observe(&content);
            let held = SendWrapper::new((observer, on_resize));
            on_cleanup(move || held.take().0.disconnect());
        });
    }

    /// Server-side rendering has nothing to observe.
    #[cfg(not(any(feature = "hydrate", feature = "csr")))]
    pub fn observe(self, _content: NodeRef<html::Ol>) {}
}

#[cfg(test)]
mod tests {
    use super::{classify, Scrolled};

    #[test]
    fn at_the_bottom_follows_and_scrolling_up_stops_following() {
        // 1000 px of content in a 400 px view: the bottom is at 600.
        assert_eq!(classify(600, 1000, 400, 500), Scrolled::AtBottom);
        assert_eq!(
            classify(599, 1000, 400, 600),
            Scrolled::AtBottom,
            "rounding"
        );
        assert_eq!(classify(500, 1000, 400, 600), Scrolled::Up);
        assert_eq!(
            classify(550, 1000, 400, 500),
            Scrolled::Other,
            "moving down"
        );
        // Content shrank under a reader at the bottom: the browser clamps the view, which
        // stays at the bottom (still following).
        assert_eq!(classify(300, 700, 400, 600), Scrolled::AtBottom);
    }
}
