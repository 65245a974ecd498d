//! Page numbers for long lists (repositories, tags): which slice one page
//! shows and the navigation links around it.

use std::fmt::Write as _;

use super::html::esc;

/// One page of `total` items, `per_page` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pager {
    /// 1-based, clamped to the pages that exist.
    pub page: usize,
    /// Items per page (at least 1).
    pub per_page: usize,
    /// Items in all.
    pub total: usize,
}

impl Pager {
    /// Reads a `page` query value (anything unreadable is page 1; past the
    /// end is the last page).
    pub fn new(param: Option<&str>, per_page: usize, total: usize) -> Pager {
        let per_page = per_page.max(1);
        let pages = total.div_ceil(per_page).max(1);
        let page = param
            .and_then(|p| p.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        Pager {
            page,
            per_page,
            total,
        }
    }

    /// How many pages there are (1 for an empty list).
    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// The items of this page, as a range of indexes.
    pub fn range(&self) -> std::ops::Range<usize> {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(self.total);
        start..start.saturating_add(self.per_page).min(self.total)
    }

    /// The page requested by `param` before the total is known: how many to
    /// skip (for listings that count while they page).
    pub fn skip_for(param: Option<&str>, per_page: usize) -> usize {
        let page = param
            .and_then(|p| p.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        (page - 1).saturating_mul(per_page.max(1))
    }

    /// Previous/next links and "page X of Y"; `href(n)` is page n's URL
    /// (escaped here). Empty when everything fits on one page.
    pub fn nav(&self, href: impl Fn(usize) -> String) -> String {
        if self.pages() <= 1 {
            return String::new();
        }
        let mut out = String::from("<nav class=\"pager\" aria-label=\"Pages\">");
        if self.page > 1 {
            let _ = write!(
                out,
                "<a rel=\"prev\" href=\"{}\">← Previous</a>",
                esc(&href(self.page - 1))
            );
        }
        let _ = write!(
            out,
            "<span>Page {} of {} ({} items)</span>",
            self.page,
            self.pages(),
            self.total
        );
        if self.page < self.pages() {
            let _ = write!(
                out,
                "<a rel=\"next\" href=\"{}\">Next →</a>",
                esc(&href(self.page + 1))
            );
        }
        out.push_str("</nav>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_ranges() {
        let p = Pager::new(None, 50, 1234);
        assert_eq!((p.page, p.pages(), p.range()), (1, 25, 0..50));
        let p = Pager::new(Some("25"), 50, 1234);
        assert_eq!(p.range(), 1200..1234);
        // Past the end: the last page; junk and zero: the first.
        assert_eq!(Pager::new(Some("99"), 50, 1234).page, 25);
        assert_eq!(Pager::new(Some("0"), 50, 1234).page, 1);
        assert_eq!(Pager::new(Some("-3"), 50, 1234).page, 1);
        assert_eq!(Pager::new(Some("x"), 50, 1234).page, 1);
        // Empty list: one empty page.
        let p = Pager::new(Some("3"), 50, 0);
        assert_eq!((p.page, p.pages(), p.range()), (1, 1, 0..0));
        // Exactly full pages.
        assert_eq!(Pager::new(Some("2"), 50, 100).range(), 50..100);
        assert_eq!(Pager::new(None, 0, 3).per_page, 1);
        assert_eq!(Pager::skip_for(Some("3"), 50), 100);
        assert_eq!(
            Pager::skip_for(Some(&usize::MAX.to_string()), 50),
            usize::MAX
        );
    }

    #[test]
    fn navigation() {
        let href = |n: usize| format!("/ui/?q=a&b&page={n}");
        assert_eq!(Pager::new(None, 50, 50).nav(href), "");
        let first = Pager::new(None, 50, 120).nav(href);
        assert!(!first.contains("rel=\"prev\""));
        assert!(first.contains("href=\"/ui/?q=a&amp;b&amp;page=2\""));
        assert!(first.contains("Page 1 of 3 (120 items)"));
        let last = Pager::new(Some("3"), 50, 120).nav(href);
        assert!(last.contains("page=2\">← Previous") && !last.contains("rel=\"next\""));
    }
}
