//! Cursor pagination, the same in every list endpoint: pages of 1 to
//! [`MAX_PAGE_SIZE`] items (default [`DEFAULT_PAGE_SIZE`]) ordered by id, and
//! the id of a page's last item as the cursor of the next one.

use crate::problem::Problem;

/// Page size when the request names none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page size a request asks for.
///
/// # Errors
/// 422 `INVALID_INPUT` (field `limit`) outside 1..=[`MAX_PAGE_SIZE`].
pub fn page_size(requested: Option<u64>) -> Result<u64, Problem> {
    let limit = requested.unwrap_or(DEFAULT_PAGE_SIZE);
    if (1..=MAX_PAGE_SIZE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::invalid_input(
            "limit",
            format!("limit: must be between 1 and {MAX_PAGE_SIZE}"),
        ))
    }
}

/// Splits `rows`, fetched with `limit + 1`, into the page and the cursor of
/// the next page (`None` on the last page).
pub fn split_page<T, C>(
    mut rows: Vec<T>,
    limit: u64,
    id_of: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(id_of);
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn pages_and_cursors() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        assert_eq!(
            split_page(ids.clone(), 2, |id| *id),
            (ids[..2].to_vec(), Some(ids[1]))
        );
        assert_eq!(split_page(ids.clone(), 3, |id| *id), (ids.clone(), None));
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(0)).unwrap_err().code, "INVALID_INPUT");
        assert!(page_size(Some(MAX_PAGE_SIZE + 1)).is_err());
    }
}
