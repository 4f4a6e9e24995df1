//! Starts real testnets in temp dirs and looks at them from outside, with
//! real clients: a (validating) hickory resolver, rustls, raw TCP.

mod binary;
mod dns;
mod load;
mod rdap;
mod support;
mod web;
