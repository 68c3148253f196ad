//! Data-port request and answer headers (`alluxio_common::data_protocol`),
//! the first bytes a worker reads from any connection: decoding answers Ok
//! or Err, and whatever decodes encodes back to the same bytes.
#![no_main]

use alluxio_common::data_protocol::{AnswerHeader, Request, ANSWER_HEADER_LEN, REQUEST_LEN};
use alluxio_fuzz::with_header_crc;
use libfuzzer_sys::fuzz_target;

fn request(b: &[u8]) {
    let Ok(raw) = <&[u8; REQUEST_LEN]>::try_from(b) else {
        return;
    };
    if let Ok(request) = Request::decode(raw) {
        assert_eq!(&request.encode(), raw, "{request:?} re-encodes differently");
    }
}

fn answer(b: &[u8]) {
    let Ok(raw) = <&[u8; ANSWER_HEADER_LEN]>::try_from(b) else {
        return;
    };
    if let Ok(answer) = AnswerHeader::decode(raw) {
        assert_eq!(&answer.encode(), raw, "{answer:?} re-encodes differently");
    }
}

fuzz_target!(|data: &[u8]| {
    request(data);
    answer(data);
    if let Some(fixed) = with_header_crc(data, REQUEST_LEN) {
        request(&fixed);
    }
    if let Some(fixed) = with_header_crc(data, ANSWER_HEADER_LEN) {
        answer(&fixed);
    }
});
