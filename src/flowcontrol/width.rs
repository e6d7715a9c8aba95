//! Upstream's work estimator, as far as it is cheap: a LIST, and a WATCH (its set-up sends the
//! same objects, as upstream estimates it with WatchList on), takes one seat per 100 objects
//! it must go through (the resource's cached count), at most 10; everything else one seat.
//! (Mutating requests' extra seats for their watchers' fan-out are not estimated.)

use super::classify::Target;
use super::{FlowControl, Request};

/// Objects a seat is worth in a LIST (upstream's `ObjectsPerSeat`).
const OBJECTS_PER_SEAT: usize = 100;
/// The most seats one request takes (upstream's `MaximumSeatsLimit`).
const MAX_SEATS: u32 = 10;

pub fn estimate(fc: &FlowControl, req: &Request, level_limit: u32) -> u32 {
    let Target::Resource {
        verb: "list" | "watch",
        api_group,
        resource,
        ..
    } = &req.target
    else {
        return 1;
    };
    let Some(stored) = fc.stored_objects(api_group, resource) else {
        return 1;
    };
    // kapi lists from its cache: every stored object is looked at, whatever the limit, as
    // upstream estimates the lists its watch cache serves.
    seats_for(stored, level_limit)
}

fn seats_for(objects: usize, level_limit: u32) -> u32 {
    let seats = objects.div_ceil(OBJECTS_PER_SEAT).max(1);
    let seats = u32::try_from(seats).unwrap_or(u32::MAX);
    seats.min(MAX_SEATS).min(level_limit.max(1))
}

#[cfg(test)]
mod tests {
    use super::seats_for;

    #[test]
    fn a_list_takes_a_seat_per_hundred_objects_up_to_ten() {
        assert_eq!(seats_for(0, 50), 1);
        assert_eq!(seats_for(100, 50), 1);
        assert_eq!(seats_for(101, 50), 2);
        assert_eq!(seats_for(5_000, 50), 10);
        assert_eq!(seats_for(5_000, 3), 3);
    }
}
