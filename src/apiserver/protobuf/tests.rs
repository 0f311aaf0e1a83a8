//! Unit tests of the protobuf transcoder.
use super::*;
