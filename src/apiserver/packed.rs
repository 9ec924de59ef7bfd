//! Stored objects are kept LZ4-compressed: a server holding 500k objects would otherwise spend
//! most of its memory on JSON that is read far less often than it is kept (100k customers:
//! 657 MiB of JSON). Compression is done once per write and undone per read; watches get the
//! uncompressed bytes from the change itself, so fan-out costs nothing extra.

use bytes::Bytes;

/// One object's JSON, compressed.
#[derive(Clone, Debug)]
pub struct Packed(Bytes);

impl Packed {
    pub fn pack(json: &[u8]) -> Self {
        let mut packed = lz4_flex::compress_prepend_size(json);
        // The buffer was sized for the worst case; it is held for the object's life.
        packed.shrink_to_fit();
        Self(Bytes::from(packed))
    }

    /// The JSON back. Packed data never leaves the store, so it is always well-formed; should
    /// it not be, the empty result fails to parse where it is used, as a corrupt object would.
    pub fn unpack(&self) -> Bytes {
        lz4_flex::decompress_size_prepended(&self.0)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Packed;

    #[test]
    fn round_trips_and_shrinks_typical_objects() {
        let json = br#"{"apiVersion":"csp.operator.dev/v1alpha1","kind":"PurchasePermission","metadata":{"managedFields":[{"fieldsV1":{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{"f:lastTransitionTime":{".":{}},"f:message":{".":{}},"f:observedGeneration":{".":{}},"f:reason":{".":{}},"f:status":{".":{}},"f:type":{".":{}}},"k:{\"type\":\"OwnerRoleAssigned\"}":{"f:lastTransitionTime":{".":{}},"f:message":{".":{}},"f:observedGeneration":{".":{}},"f:reason":{".":{}},"f:status":{".":{}},"f:type":{".":{}}}}}}}],"name":"c0"}}"#;
        let packed = Packed::pack(json);
        assert_eq!(packed.unpack().as_ref(), json.as_slice());
        // Repetitive managedFields keys compress well (this one to ~57%).
        assert!(
            packed.len() * 4 < json.len() * 3,
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert!(Packed::pack(b"").unpack().is_empty());
    }
}
