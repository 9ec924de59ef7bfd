//! Stored objects are kept LZ4-compressed against a dictionary: a server holding 500k objects
//! would otherwise spend most of its memory on JSON that is read far less often than it is kept
//! (100k customers: 657 MiB of JSON). Objects of one resource share most of their bytes (keys,
//! managedFields, condition messages), so each is compressed against a recent object of the
//! same resource: a 2 KiB PurchasePermission with its status and managedFields keeps ~200 bytes.
//! Compression is done once per write and undone per read. The change history shares the
//! stored bytes; each watch unpacks a change it sends (a fraction of a microsecond, next to
//! writing it out).

use bytes::Bytes;
use std::sync::Arc;

/// Writes to a resource between two refreshes of its dictionary.
const REFRESH_EVERY: u32 = 1024;

/// One object's JSON, compressed, with the dictionary it was compressed against.
#[derive(Clone, Debug)]
pub struct Packed {
    data: Bytes,
    dict: Arc<[u8]>,
}

impl Packed {
    /// The JSON back. Packed data never leaves the store, so it is always well-formed; should
    /// it not be, the empty result fails to parse where it is used, as a corrupt object would.
    pub fn unpack(&self) -> Bytes {
        lz4_flex::block::decompress_size_prepended_with_dict(&self.data, &self.dict)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Bytes held by this object alone (its dictionary is shared).
    pub fn len(&self) -> usize {
        self.data.len()
    }
}

/// Compresses the objects of one resource; its dictionary is the last object it compressed
/// when it was last refreshed (the first one, then every [`REFRESH_EVERY`] writes), so it
/// follows the shape the objects have now (with status, after the controllers wrote it).
/// An old dictionary lives as long as an object packed with it.
#[derive(Default)]
pub struct Packer {
    dict: Option<Arc<[u8]>>,
    since_refresh: u32,
    /// Reused output buffer: each object then costs one exact-size allocation.
    scratch: Vec<u8>,
}

impl Packer {
    pub fn pack(&mut self, json: &[u8]) -> Packed {
        let dict = self.dict.clone().unwrap_or_else(|| Arc::from(&[][..]));
        let bound = lz4_flex::block::get_maximum_output_size(json.len());
        if self.scratch.len() < bound {
            self.scratch.resize(bound, 0);
        }
        let data = match lz4_flex::block::compress_into_with_dict(json, &mut self.scratch, &dict) {
            Ok(n) => {
                // The uncompressed size first, as `decompress_size_prepended_with_dict` reads it.
                let mut data = Vec::with_capacity(4 + n);
                data.extend_from_slice(&(json.len() as u32).to_le_bytes());
                data.extend_from_slice(&self.scratch[..n]);
                data
            }
            // Cannot happen (the buffer has the bound's size); fall back to the allocating call.
            Err(_) => lz4_flex::block::compress_prepend_size_with_dict(json, &dict),
        };
        self.since_refresh += 1;
        if self.dict.is_none() || self.since_refresh >= REFRESH_EVERY {
            self.dict = Some(Arc::from(json));
            self.since_refresh = 0;
        }
        Packed {
            data: Bytes::from(data),
            dict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Packer, REFRESH_EVERY};

    fn object(i: usize) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"csp.operator.dev/v1alpha1","kind":"PurchasePermission","metadata":{{"managedFields":[{{"fieldsV1":{{"f:status":{{"f:conditions":{{"k:{{\"type\":\"Ready\"}}":{{"f:lastTransitionTime":{{".":{{}}}},"f:message":{{".":{{}}}},"f:reason":{{".":{{}}}},"f:status":{{".":{{}}}},"f:type":{{".":{{}}}}}}}}}}}}}}],"name":"c{i}","uid":"{i:08x}-0000-4000-8000-000000000000"}},"status":{{"state":"Enabled"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn round_trips_and_compresses_against_earlier_objects() {
        let mut packer = Packer::default();
        let first = object(1);
        let packed_first = packer.pack(&first);
        assert_eq!(packed_first.unpack().as_ref(), first.as_slice());
        // The next object of the same shape is mostly references into the first one.
        let second = object(2);
        let packed_second = packer.pack(&second);
        assert_eq!(packed_second.unpack().as_ref(), second.as_slice());
        assert!(
            packed_second.len() * 4 < second.len(),
            "{} of {}",
            packed_second.len(),
            second.len()
        );
        assert!(packed_second.len() < packed_first.len());
        // Empty input round-trips too (checked without `unpack`, which hides errors).
        let empty = packer.pack(b"");
        let raw = lz4_flex::block::decompress_size_prepended_with_dict(&empty.data, &empty.dict);
        assert_eq!(raw.expect("decompresses"), Vec::<u8>::new());
    }

    #[test]
    fn objects_outlive_refreshes_of_the_dictionary() {
        let mut packer = Packer::default();
        let kept: Vec<_> = (0..REFRESH_EVERY as usize * 2 + 3)
            .map(|i| (object(i), packer.pack(&object(i))))
            .collect();
        for (json, packed) in kept {
            assert_eq!(packed.unpack().as_ref(), json.as_slice());
        }
    }
}
