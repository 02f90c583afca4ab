// @generated automatically by Diesel CLI.

diesel::table! {
    message (value) {
        value -> Text,
    }
}

diesel::table! {
    message_count (shard) {
        shard -> Int8,
        n -> Int8,
    }
}

diesel::allow_tables_to_appear_in_same_query!(message, message_count,);
