//! Where an org's vectors live: one S3 Vectors index per org (isolation by construction; an
//! org's deletion deletes its index), spread over the deployment's vector buckets.
//!
//! A vector bucket holds at most 10,000 indexes and an account 10,000 buckets, so a
//! deployment declares `VECTOR_BUCKETS` buckets named `{VECTOR_BUCKET_PREFIX}-{n}`, n from 0,
//! and an org's index is in bucket `n = first 8 bytes of SHA-256(org id) mod count`: uniform
//! over the buckets, stable for the org, computed without a lookup. Size the count so that
//! orgs / count stays well under 10,000 (25 buckets hold 150,000 orgs at 60 % fill); the count
//! cannot change without moving indexes, so choose it for the growth you expect.

use domain::OrgId;
use sha2::{Digest, Sha256};

/// The variable naming the vector buckets' common prefix.
pub const VECTOR_BUCKET_PREFIX_ENV: &str = "VECTOR_BUCKET_PREFIX";
/// The variable giving how many vector buckets there are (default 1).
pub const VECTOR_BUCKETS_ENV: &str = "VECTOR_BUCKETS";
/// The most indexes one vector bucket holds.
pub const INDEXES_PER_BUCKET: u64 = 10_000;

/// The deployment's vector buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorBuckets {
    pub prefix: String,
    pub count: u32,
}

/// Where one org's vectors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorIndex {
    pub bucket: String,
    pub index: String,
}

impl VectorBuckets {
    /// From the variables (`None` when the prefix is unset); a missing or zero count is 1.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<VectorBuckets> {
        let prefix = var(VECTOR_BUCKET_PREFIX_ENV)?.trim().to_owned();
        if prefix.is_empty() {
            return None;
        }
        let count = var(VECTOR_BUCKETS_ENV).and_then(|v| v.trim().parse::<u32>().ok()).filter(|n| *n > 0).unwrap_or(1);
        Some(VectorBuckets { prefix, count })
    }

    /// The bucket number of `org`.
    pub fn bucket_number(&self, org: OrgId) -> u32 {
        let digest = Sha256::digest(org.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let n = u64::from_be_bytes(first) % u64::from(self.count.max(1));
        u32::try_from(n).unwrap_or(0)
    }

    /// The name of bucket `n`.
    pub fn bucket_name(&self, n: u32) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Every bucket's name.
    pub fn bucket_names(&self) -> Vec<String> {
        (0..self.count.max(1)).map(|n| self.bucket_name(n)).collect()
    }

    /// The index of `org`: in its bucket, named after it (S3 Vectors index names are 3 to 63
    /// lowercase letters, digits, hyphens and dots).
    pub fn index_of(&self, org: OrgId) -> VectorIndex {
        VectorIndex { bucket: self.bucket_name(self.bucket_number(org)), index: format!("org-{}", org.to_string().to_ascii_lowercase()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orgs_spread_evenly_and_stay_put() {
        let buckets = VectorBuckets { prefix: "tenantry-vectors".into(), count: 8 };
        let mut per = [0u32; 8];
        for _ in 0..8_000 {
            let org = OrgId::new();
            let n = buckets.bucket_number(org);
            assert_eq!(n, buckets.bucket_number(org), "stable");
            per[usize::try_from(n).unwrap()] += 1;
        }
        assert!(per.iter().all(|c| (800..1_200).contains(c)), "{per:?}");
    }

    #[test]
    fn index_names_are_valid_s3_vectors_names() {
        let buckets = VectorBuckets::from_vars(|n| (n == VECTOR_BUCKET_PREFIX_ENV).then(|| "v".to_owned())).unwrap();
        assert_eq!(buckets.count, 1);
        let idx = buckets.index_of(OrgId::new());
        assert_eq!(idx.bucket, "v-0");
        assert!(idx.index.len() <= 63 && idx.index.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(VectorBuckets::from_vars(|_| None).is_none());
    }
}
