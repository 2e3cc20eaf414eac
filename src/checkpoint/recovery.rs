//! The pure decision of what a restart trusts and what it reruns, kept apart from the file
//! system so every case is unit-tested.

/// What recovery does, given the ids in `offsets/` and `commits/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Restore the state snapshot written with this commit.
    pub restore_state_of: Option<u64>,
    /// Read this offsets entry.
    pub offsets_of: u64,
    /// Rerun that batch (it was planned but not committed) instead of starting after it.
    pub rerun: bool,
}

/// Decides recovery: `None` for a fresh start.
pub fn plan_recovery(offsets: &[u64], commits: &[u64]) -> Option<Recovery> {
    let last_offsets = offsets.iter().max().copied()?;
    let last_commit = commits
        .iter()
        .filter(|c| offsets.contains(c))
        .max()
        .copied();
    Some(match last_commit {
        Some(committed) if committed >= last_offsets => Recovery {
            restore_state_of: Some(committed),
            offsets_of: committed,
            rerun: false,
        },
        committed => Recovery {
            restore_state_of: committed,
            offsets_of: last_offsets,
            rerun: true,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_checkpoint_starts_fresh() {
        assert_eq!(plan_recovery(&[], &[]), None);
    }

    #[test]
    fn committed_batch_resumes_after_it() {
        let plan = plan_recovery(&[0, 1, 2], &[0, 1, 2]).expect("resume");
        assert_eq!(
            plan,
            Recovery {
                restore_state_of: Some(2),
                offsets_of: 2,
                rerun: false
            }
        );
    }

    #[test]
    fn uncommitted_batch_is_rerun_on_the_last_committed_state() {
        let plan = plan_recovery(&[0, 1, 2, 3], &[0, 1, 2]).expect("resume");
        assert_eq!(
            plan,
            Recovery {
                restore_state_of: Some(2),
                offsets_of: 3,
                rerun: true
            }
        );
    }

    #[test]
    fn first_batch_uncommitted_reruns_from_empty_state() {
        let plan = plan_recovery(&[0], &[]).expect("resume");
        assert_eq!(
            plan,
            Recovery {
                restore_state_of: None,
                offsets_of: 0,
                rerun: true
            }
        );
    }
}
