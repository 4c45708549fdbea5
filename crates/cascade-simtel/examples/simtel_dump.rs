//! Prints the EventIO object tree of a sim_telarray file (type, version, id, length).
//!
//! `cargo run -p cascade-simtel --example simtel_dump -- FILE [MAX_TOP_LEVEL_OBJECTS]`

use std::path::PathBuf;

use cascade_simtel::eventio::{
    FramingError, Object, ReadOutcome, object_type_name, read_top_level,
};
use cascade_simtel::input::open_decompressed;

fn print_tree(object: &Object<'_>, depth: usize) {
    let h = &object.header;
    println!(
        "{:indent$}{} {} v{} id={} len={}",
        "",
        h.object_type,
        object_type_name(h.object_type),
        h.version,
        h.id,
        h.length,
        indent = 2 * depth
    );
    if h.only_sub_objects {
        for child in object.children() {
            match child {
                Ok(child) => print_tree(&child, depth + 1),
                Err(e) => println!("{:indent$}error: {e}", "", indent = 2 * depth + 2),
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: simtel_dump FILE [MAX]")?);
    let max: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let (mut input, _) = open_decompressed(&path)?;
    let mut payload = Vec::new();
    for _ in 0..max {
        match read_top_level(&mut *input, &mut payload) {
            Ok(ReadOutcome::Object(header)) => {
                let object = Object {
                    header,
                    payload: &payload,
                    payload_offset: 0,
                };
                print_tree(&object, 0);
            }
            Ok(ReadOutcome::EndOfStream) => break,
            Err(FramingError::Truncated { consumed, .. }) => {
                println!("truncated after {consumed} bytes");
                break;
            }
            Err(FramingError::BadSync) => {
                println!("bad sync marker");
                break;
            }
            Err(FramingError::Io(e)) => return Err(e.into()),
        }
    }
    Ok(())
}
