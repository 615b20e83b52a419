//! The orders API's rules: who may do what, bad input, unknown products,
//! listing, metrics.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use service_kit::Clock;
use testkit::Backend;
use uuid::Uuid;

use testkit::assert_problem;

use crate::helpers::{spawn_system, spawn_system_with};

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn customers_order_for_themselves_and_see_only_their_own_orders(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (ada, ada_token) = system.customer(100_000).await;
    let (bob, bob_token) = system.customer(100_000).await;

    let for_bob = system.place_raw(&ada_token, bob, &[(book, 1)], None).await;
    assert_problem(for_bob, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let anonymous = system
        .client
        .post(format!("{}/orders", system.orders.address))
        .json(&json!({"lines": []}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    let adas = system.place(&ada_token, ada, &[(book, 1)]).await;
    let bobs = system.place(&bob_token, bob, &[(book, 1)]).await;
    for path in [
        format!("/orders/{adas}"),
        format!("/orders/{adas}/events"),
        format!("/orders/{adas}/status"),
    ] {
        let response = system.order_api(Method::GET, &path, &bob_token, None).await;
        assert_problem(response, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    }
    let cancel_other = system
        .order_api(
            Method::POST,
            &format!("/orders/{adas}/cancel"),
            &bob_token,
            None,
        )
        .await;
    assert_problem(cancel_other, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    let ship_as_customer = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{bobs}/status"),
            &bob_token,
            Some(&json!({"status": "SHIPPED", "carrier": "x", "tracking_number": "y"})),
        )
        .await;
    assert_problem(ship_as_customer, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let bobs_list: Value = system
        .order_api(Method::GET, "/orders", &bob_token, None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = bobs_list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bobs.to_string()]);
    let spying = system
        .order_api(
            Method::GET,
            &format!("/orders?customer_id={ada}"),
            &bob_token,
            None,
        )
        .await;
    assert_problem(spying, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let all: Value = system
        .order_api(Method::GET, "/orders", &system.admin_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let filtered: Value = system
        .order_api(
            Method::GET,
            &format!("/orders?customer_id={ada}&limit=1"),
            &system.admin_token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["items"][0]["id"], adas.to_string());
    system.wait_status(adas, "CONFIRMED").await;
    let confirmed: Value = system
        .order_api(
            Method::GET,
            "/orders?status=CONFIRMED",
            &system.admin_token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        confirmed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "CONFIRMED")
    );
    system.assert_invariants().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn unknown_inactive_and_malformed_orders_are_refused_and_create_nothing(
    #[case] backend: Backend,
) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let retired = system.product("RETIRED", 1_000, 100).await;
    let luxury = system.product("LUXURY", 1_000_000_000_000, 100_000).await;
    system
        .inventory
        .api()
        .expect(
            Method::PATCH,
            &format!("/products/{retired}"),
            Some(&system.admin_token),
            Some(&json!({"active": false})),
            StatusCode::OK,
        )
        .await;
    system.wait_for_catalog(retired, false).await;
    let (customer, token) = system.customer(100_000).await;

    assert_problem(
        system
            .place_raw(&token, customer, &[(Uuid::now_v7(), 1)], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNKNOWN_PRODUCT",
    )
    .await;
    assert_problem(
        system
            .place_raw(&token, customer, &[(retired, 1)], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INACTIVE_PRODUCT",
    )
    .await;
    assert_problem(
        system.place_raw(&token, customer, &[], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        system.place_raw(&token, customer, &[(book, 0)], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        system
            .place_raw(&token, customer, &[(book, 1), (book, 2)], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    // A total above the contract's money ceiling (10^15 minor units).
    assert_problem(
        system
            .place_raw(&token, customer, &[(luxury, 10_000)], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;

    let url = format!("{}/orders", system.orders.address);
    let with_price = json!({"lines": [{"product_id": book, "quantity": 1, "unit_price": {"amount_minor": 1, "currency": "EUR"}}]});
    let response = system
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&with_price)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    let negative = json!({"lines": [{"product_id": book, "quantity": -1}]});
    let response = system
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&negative)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    let bad_address = json!({"lines": [{"product_id": book, "quantity": 1}], "shipping_address": {"name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "germany"}});
    let response = system
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&bad_address)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT").await;
    let malformed = system
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"lines\": [")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    let huge = json!({"lines": [{"product_id": book, "quantity": 1}], "note": "x".repeat(100_000)});
    let response = system
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    let bad_key = system
        .place_raw(&token, customer, &[(book, 1)], Some(&"k".repeat(300)))
        .await;
    assert_problem(bad_key, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT").await;

    let page: Value = system
        .order_api(Method::GET, "/orders", &system.admin_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    let unknown = Uuid::now_v7();
    assert_problem(
        system
            .order_api(
                Method::GET,
                &format!("/orders/{unknown}"),
                &system.admin_token,
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    assert_problem(
        system
            .order_api(Method::GET, "/orders/nope", &system.admin_token, None)
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
    )
    .await;
    system.assert_invariants().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn fulfilment_moves_only_forward_and_says_what_is_allowed(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;
    let order = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(order, "CONFIRMED").await;
    let path = format!("/orders/{order}/status");
    let admin = &system.admin_token;

    let deliver_early = system
        .order_api(
            Method::PATCH,
            &path,
            admin,
            Some(&json!({"status": "DELIVERED"})),
        )
        .await;
    let problem = assert_problem(deliver_early, StatusCode::CONFLICT, "INVALID_TRANSITION").await;
    assert_eq!(
        (
            problem["order_status"].as_str(),
            problem["allowed_transitions"].clone()
        ),
        (Some("CONFIRMED"), json!(["SHIPPED"]))
    );
    let back_to_pending = system
        .order_api(
            Method::PATCH,
            &path,
            admin,
            Some(&json!({"status": "PENDING"})),
        )
        .await;
    assert_problem(back_to_pending, StatusCode::CONFLICT, "INVALID_TRANSITION").await;
    let no_carrier = system
        .order_api(
            Method::PATCH,
            &path,
            admin,
            Some(&json!({"status": "SHIPPED"})),
        )
        .await;
    assert_problem(
        no_carrier,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(
        system.order(order).await["status"],
        "CONFIRMED",
        "nothing changed"
    );
    system.assert_invariants().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn metrics_count_orders_by_status_and_time_the_decisions(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 1).await;
    let (customer, token) = system.customer(100_000).await;
    let first = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(first, "CONFIRMED").await;
    let second = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(second, "REJECTED").await;

    let customer_view = system
        .order_api(Method::GET, "/orders/metrics", &token, None)
        .await;
    assert_problem(customer_view, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let metrics: Value = system
        .order_api(Method::GET, "/orders/metrics", &system.admin_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["counts"]["CONFIRMED"], 1);
    assert_eq!(metrics["counts"]["REJECTED"], 1);
    assert_eq!(metrics["counts"]["PENDING"], 0);
    assert_eq!(metrics["place_to_confirmed_ms"]["count"], 1);
    assert_eq!(metrics["place_to_rejected_ms"]["count"], 1);
    assert_eq!(metrics["total_orders"], 2);
    assert_eq!(metrics["decided_last_minute"], 2);
    assert!(metrics["avg_processing_ms"].as_f64().unwrap() >= 0.0);
    assert!(metrics["place_to_confirmed_ms"]["p50"].as_i64().unwrap() >= 0);
    system.assert_invariants().await;
}

/// Another program holds SQLite's write lock longer than order-svc will
/// wait (its busy timeout, three times): the order is answered 503
/// `DATABASE_BUSY` with `Retry-After`, never a 500, and once the lock is
/// released the same request is accepted.
#[tokio::test]
async fn a_sqlite_database_locked_too_long_is_answered_503_with_retry_after() {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};
    let system = spawn_system_with(Backend::Sqlite, Clock::system(), |common| {
        common.sqlite_busy_timeout_ms = 100;
    })
    .await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;

    let mut options = ConnectOptions::new(system.orders.database.url.clone());
    options.max_connections(1).min_connections(1);
    let other_program = Database::connect(options).await.unwrap();
    other_program
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .unwrap();
    let refused = system.place_raw(&token, customer, &[(book, 1)], None).await;
    assert_eq!(retry_after(&refused), Some("1"));
    assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE, "DATABASE_BUSY").await;

    other_program.execute_unprepared("COMMIT").await.unwrap();
    other_program.close().await.unwrap();
    let order = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(order, "CONFIRMED").await;
    system.assert_invariants().await;
}

/// `PUT /orders/{id}/status` is `PATCH`'s twin (same transitions, same
/// errors), and statuses are read in any case, written upper case.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn put_and_lower_case_statuses_take_the_same_path_as_patch(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;
    let order = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(order, "CONFIRMED").await;
    let path = format!("/orders/{order}/status");
    let admin = &system.admin_token;

    let mut refusals = Vec::new();
    for method in [Method::PATCH, Method::PUT] {
        let early = system
            .order_api(method, &path, admin, Some(&json!({"status": "delivered"})))
            .await;
        refusals.push(assert_problem(early, StatusCode::CONFLICT, "INVALID_TRANSITION").await);
    }
    assert_eq!(refusals[0]["allowed_transitions"], json!(["SHIPPED"]));
    assert_eq!(
        refusals[0]["allowed_transitions"],
        refusals[1]["allowed_transitions"]
    );
    assert_problem(
        system
            .order_api(Method::PUT, &path, admin, Some(&json!({"status": "lost"})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    assert_problem(
        system
            .order_api(
                Method::PUT,
                &path,
                &token,
                Some(&json!({"status": "shipped"})),
            )
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let shipped = system
        .order_api(
            Method::PUT,
            &path,
            admin,
            Some(&json!({"status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"})),
        )
        .await;
    assert_eq!(shipped.status(), StatusCode::OK);
    let shipped: Value = shipped.json().await.unwrap();
    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(shipped["carrier"], "DHL");
    let delivered: Value = system
        .order_api(
            Method::PATCH,
            &path,
            admin,
            Some(&json!({"status": "Delivered"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(delivered["status"], "DELIVERED");
    let listed: Value = system
        .order_api(Method::GET, "/orders?status=delivered", admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], order.to_string());
    assert_eq!(listed["items"][0]["status"], "DELIVERED");
    system.assert_invariants().await;
}

/// `POST /orders` takes the shipping details simpler services send
/// (`shipping`: carrier, tracking number, address) besides `shipping_address`.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_carries_the_shipping_details_given_at_placement(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (_, token) = system.customer(100_000).await;
    let address = json!({"name": "Ada", "line1": "1 Road", "city": "London",
        "postal_code": "N1 1AA", "country": "GB"});
    let place = |body: Value| {
        let token = token.clone();
        let system = &system;
        async move {
            system
                .order_api(Method::POST, "/orders", &token, Some(&body))
                .await
        }
    };
    let lines = json!([{"product_id": book, "quantity": 1}]);
    let placed = place(json!({"lines": lines, "shipping": {
        "carrier": "UPS", "tracking_number": "1Z999", "address": address}}))
    .await;
    assert_eq!(placed.status(), StatusCode::ACCEPTED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["carrier"], "UPS");
    assert_eq!(placed["tracking_number"], "1Z999");
    assert_eq!(placed["shipping_address"]["city"], "London");
    let id: uuid::Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    let confirmed = system.wait_status(id, "CONFIRMED").await;
    assert_eq!(confirmed["carrier"], "UPS");

    let both_equal = place(json!({"lines": lines, "shipping_address": address,
        "shipping": {"address": address}}))
    .await;
    assert_eq!(both_equal.status(), StatusCode::ACCEPTED);
    let mut elsewhere = address.clone();
    elsewhere["city"] = json!("Paris");
    let body = assert_problem(
        place(json!({"lines": lines, "shipping_address": address,
            "shipping": {"address": elsewhere}}))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "shipping.address");
    let body = assert_problem(
        place(json!({"lines": lines, "shipping": {"carrier": " "}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "shipping.carrier");
    assert_problem(
        place(json!({"lines": lines, "shipping": {"courier": "UPS"}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    system.assert_invariants().await;
}

/// A price change in the catalog changes new orders only: an order keeps
/// the price it was placed at.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn orders_keep_the_price_they_were_placed_at(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;
    let before = system.place(&token, customer, &[(book, 2)]).await;
    system.wait_status(before, "CONFIRMED").await;
    let changed = system
        .inventory
        .api()
        .send(
            Method::PATCH,
            &format!("/products/{book}"),
            Some(&system.admin_token),
            Some(&json!({"unit_price": {"amount_minor": 1_500, "currency": "EUR"}})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    system
        .wait_for_catalog_entry(book, |p| p["unit_price"]["amount_minor"] == 1_500)
        .await;
    let after = system.place(&token, customer, &[(book, 2)]).await;
    let old = system.order(before).await;
    assert_eq!(old["lines"][0]["unit_price"]["amount_minor"], 1_000);
    assert_eq!(old["total"]["amount_minor"], 2_000);
    let new = system.wait_status(after, "CONFIRMED").await;
    assert_eq!(new["lines"][0]["unit_price"]["amount_minor"], 1_500);
    let history = system
        .inventory
        .api()
        .get_ok(&format!("/products/{book}/prices"), None)
        .await;
    assert_eq!(history["items"][0]["unit_price"]["amount_minor"], 1_500);
    assert_eq!(history["items"][1]["unit_price"]["amount_minor"], 1_000);
    system.assert_invariants().await;
}

/// With at most two orders in the saga (`OMS_MAX_PENDING_ORDERS=2`) and
/// inventory-svc away, so that they stay PENDING: the third order is
/// answered 503 `OVERLOADED` with `Retry-After` and creates nothing; once
/// one of the two leaves the saga (cancelled), a new one is accepted, and
/// every order is decided when inventory-svc is back.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn past_its_backlog_bound_the_edge_answers_503_overloaded_and_takes_orders_again_once_it_drains(
    #[case] backend: Backend,
) {
    let mut system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;
    system.restart_orders_admitting(2).await;
    system.stop_inventory().await;

    let first = system.place(&token, customer, &[(book, 1)]).await;
    let second = system.place(&token, customer, &[(book, 1)]).await;
    let refused = system.place_raw(&token, customer, &[(book, 1)], None).await;
    assert_eq!(retry_after(&refused), Some("1"));
    assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED").await;
    let listed = system
        .orders
        .api()
        .get_ok("/orders?limit=100", Some(&system.admin_token))
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "a refused order created nothing: {listed}"
    );

    system
        .order_api(
            Method::POST,
            &format!("/orders/{first}/cancel"),
            &token,
            None,
        )
        .await
        .error_for_status()
        .unwrap();
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    let third: Uuid = loop {
        let response = system.place_raw(&token, customer, &[(book, 1)], None).await;
        if response.status() == StatusCode::ACCEPTED {
            let body: Value = response.json().await.unwrap();
            break body["id"].as_str().unwrap().parse().unwrap();
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no order accepted once one left the saga"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    system.start_inventory().await;
    system.wait_status(first, "CANCELLED").await;
    system.wait_status(second, "CONFIRMED").await;
    system.wait_status(third, "CONFIRMED").await;
    system.assert_invariants().await;
}

/// The `Retry-After` header of `response`, if any.
fn retry_after(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap())
}
