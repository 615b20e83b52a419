//! The products API: create, list, read, change, restock, availability;
//! authentication; bad input; ProductUpserted on the catalog topic.

use events::{Event, Topic};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use testkit::Backend;

use testkit::assert_problem;

use crate::helpers::spawn_app;

fn new_product(sku: &str) -> Value {
    json!({
        "sku": sku, "name": "Notes on the Analytical Engine",
        "unit_price": {"amount_minor": 1999, "currency": "EUR"},
        "initial_stock": 10, "active": true
    })
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn admin_creates_reads_changes_and_restocks_a_product(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post("/products", Some(&app.admin_token), &new_product("BOOK-1"))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let product: Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("/products/{}", product["id"].as_str().unwrap())
    );
    assert_eq!(
        product["unit_price"],
        json!({"amount_minor": 1999, "currency": "EUR"})
    );
    assert_eq!(
        product["stock"],
        json!({"available": 10, "reserved": 0, "committed": 0})
    );

    let fetched: Value = app.get(&location, None).await.json().await.unwrap();
    assert_eq!(fetched, product);

    let changed = app
        .patch(&location, Some(&app.admin_token), &json!({"name": "Notes (2nd ed.)", "unit_price": {"amount_minor": 2499, "currency": "EUR"}}))
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["name"], "Notes (2nd ed.)");
    assert_eq!(changed["unit_price"]["amount_minor"], 2499);
    assert_eq!(changed["sku"], "BOOK-1");

    let restocked = app
        .post(
            &format!("{location}/stock"),
            Some(&app.admin_token),
            &json!({"delta": 5, "reason": "delivery"}),
        )
        .await;
    assert_eq!(restocked.status(), StatusCode::OK);
    let corrected = app
        .post(
            &format!("{location}/stock"),
            Some(&app.admin_token),
            &json!({"delta": -3, "reason": "damaged"}),
        )
        .await;
    let corrected: Value = corrected.json().await.unwrap();
    assert_eq!(corrected["stock"]["available"], 12);

    let below_zero = app
        .post(
            &format!("{location}/stock"),
            Some(&app.admin_token),
            &json!({"delta": -13, "reason": "too much"}),
        )
        .await;
    let problem = assert_problem(below_zero, StatusCode::CONFLICT, "INSUFFICIENT_STOCK").await;
    assert_eq!(problem["available"], 12);
    assert_eq!(
        app.product(product["id"].as_str().unwrap().parse().unwrap())
            .await["stock"]["available"],
        12
    );

    let availability: Value = app
        .get(&format!("{location}/availability?quantity=12"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(availability["reservable"], true);
    let availability: Value = app
        .get(&format!("{location}/availability?quantity=13"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(availability["reservable"], false);
    assert_eq!(availability["available"], 12);

    let deactivated: Value = app
        .patch(&location, Some(&app.admin_token), &json!({"active": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deactivated["active"], false);
    let availability: Value = app
        .get(&format!("{location}/availability?quantity=1"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        availability["reservable"], false,
        "inactive products cannot be reserved"
    );
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn every_product_change_is_published_to_the_catalog_topic(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_product("CAT-1", 500, 3).await;
    app.patch(
        &format!("/products/{id}"),
        Some(&app.admin_token),
        &json!({"active": false}),
    )
    .await;
    let mut catalog = app.reader(&app.topics().name(Topic::Catalog));
    let events = catalog
        .until("two ProductUpserted", |all| all.len() >= 2)
        .await;
    let states: Vec<(bool, String, u64)> = events
        .iter()
        .map(|e| match &e.event {
            Event::ProductUpserted(p) => {
                assert_eq!(p.product_id, id.into());
                assert_eq!(e.key(), id, "keyed by product id");
                (p.active, p.sku.clone(), p.version)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        [
            (true, "CAT-1".to_owned(), 1),
            (false, "CAT-1".to_owned(), 2)
        ],
        "each change carries the next catalog version"
    );
    assert_eq!(events[0].producer, "inventory-svc");
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn duplicate_sku_is_a_409(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_product("DUP-1", 100, 1).await;
    let again = app
        .post("/products", Some(&app.admin_token), &new_product("DUP-1"))
        .await;
    assert_problem(again, StatusCode::CONFLICT, "SKU_TAKEN").await;
    let page: Value = app
        .get("/products?sku=DUP-1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn listing_pages_through_products_with_filters(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_product(&format!("LIST-{i}"), 100, 1).await);
    }
    app.patch(
        &format!("/products/{}", ids[4]),
        Some(&app.admin_token),
        &json!({"active": false}),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/products?limit=2&cursor={c}"),
            None => "/products?limit=2".to_owned(),
        };
        let page: Value = app.get(&path, None).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every product once, in creation (id) order");

    let active: Value = app
        .get("/products?active=true&limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["items"].as_array().unwrap().len(), 4);
    let by_sku: Value = app
        .get("/products?sku=LIST-2", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_sku["items"][0]["id"], ids[2].to_string());
    let too_many = app.get("/products?limit=1000", None).await;
    assert_problem(too_many, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT").await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn writes_need_an_admin_token(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.post("/products", None, &new_product("AUTH-1")).await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let customer = app
        .post(
            "/products",
            Some(&app.customer_token),
            &new_product("AUTH-1"),
        )
        .await;
    assert_problem(customer, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let forged = app
        .post(
            "/products",
            Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
            &new_product("AUTH-1"),
        )
        .await;
    assert_problem(forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let audit = app.get("/stock/audit", Some(&app.customer_token)).await;
    assert_problem(audit, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let page: Value = app.get("/products", None).await.json().await.unwrap();
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn bad_input_gets_a_problem_and_changes_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_product("BAD-1", 100, 5).await;
    let admin = Some(app.admin_token.as_str());
    let before = app.product(id).await;

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": 0, "currency": "EUR"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": -5, "currency": "EUR"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": 100, "currency": "euro"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"sku": "bad sku", "name": "x", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"sku": "BAD-2", "name": " ", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
        ),
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": 1.5, "currency": "EUR"}, "initial_stock": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"sku": "BAD-2", "name": "x", "unit_price": {"amount_minor": 100, "currency": "EUR"}, "initial_stock": 1, "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"sku": "BAD-2"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
    ];
    for (body, status, code) in cases {
        let response = app.post("/products", admin, &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_problem(response, status, code).await;
    }

    let malformed = app
        .client
        .post(app.url("/products"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"sku\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    let huge = app
        .post(
            "/products",
            admin,
            &json!({"sku": "BIG", "name": "x".repeat(100_000)}),
        )
        .await;
    assert_problem(huge, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

    let stock = format!("/products/{id}/stock");
    assert_problem(
        app.post(&stock, admin, &json!({"delta": 0, "reason": "nothing"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        app.post(&stock, admin, &json!({"delta": 1, "reason": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        app.post(&stock, admin, &json!({"delta": "1", "reason": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_BODY",
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        app.post(
            &format!("/products/{unknown}/stock"),
            admin,
            &json!({"delta": 1, "reason": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.patch(
            &format!("/products/{unknown}"),
            admin,
            &json!({"active": true}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.patch(&format!("/products/{id}"), admin, &json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        app.get(&format!("/products/{unknown}"), None).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.get("/products/not-a-uuid", None).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
    )
    .await;
    assert_problem(
        app.get(&format!("/products/{id}/availability?quantity=0"), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        app.get(&format!("/products/{id}/availability?quantity=-2"), None)
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
    assert_problem(
        app.get(&format!("/reservations/{unknown}"), admin).await,
        StatusCode::NOT_FOUND,
        "RESERVATION_NOT_FOUND",
    )
    .await;

    assert_eq!(app.product(id).await, before, "nothing changed");
    let page: Value = app.get("/products", None).await.json().await.unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    app.assert_stock_conserved().await;
}

/// `GET /products/{id}/validate`: the availability check in the shape
/// simpler order services call, the same answer behind both.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn validate_answers_like_availability(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("VALID-1", 500, 7).await;
    for (quantity, valid) in [(7, true), (8, false)] {
        let validation: Value = app
            .get(
                &format!("/products/{product}/validate?quantity={quantity}"),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            validation,
            json!({"product_id": product, "quantity": quantity, "available": 7, "valid": valid})
        );
        let availability: Value = app
            .get(
                &format!("/products/{product}/availability?quantity={quantity}"),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(availability["reservable"], validation["valid"]);
    }
    app.patch(
        &format!("/products/{product}"),
        Some(&app.admin_token),
        &json!({"active": false}),
    )
    .await;
    let inactive: Value = app
        .get(&format!("/products/{product}/validate?quantity=1"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        inactive["valid"], false,
        "an inactive product is not orderable"
    );
    assert_problem(
        app.get(&format!("/products/{product}/validate?quantity=0"), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_problem(
        app.get(
            &format!("/products/{}/validate?quantity=1", uuid::Uuid::now_v7()),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
}

/// Every price change is kept with when it took effect, newest first; a
/// change of anything else, or to the same price, adds nothing.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn price_changes_are_kept_with_their_effective_time(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("PRICED-1", 1000, 5).await;
    let path = format!("/products/{product}");
    let price = |minor: i64| json!({"unit_price": {"amount_minor": minor, "currency": "EUR"}});
    for body in [
        price(1200),
        json!({"name": "Renamed"}),
        price(1200),
        price(900),
    ] {
        let response = app.patch(&path, Some(&app.admin_token), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let history: Value = app
        .get(&format!("{path}/prices"), None)
        .await
        .json()
        .await
        .unwrap();
    let items = history["items"].as_array().unwrap();
    let prices: Vec<i64> = items
        .iter()
        .map(|i| i["unit_price"]["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [900, 1200, 1000], "newest first: {history:#}");
    let times: Vec<chrono::DateTime<chrono::Utc>> = items
        .iter()
        .map(|i| i["effective_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let versions: Vec<i64> = items
        .iter()
        .map(|i| i["catalog_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [5, 2, 1]);

    let first_page: Value = app
        .get(&format!("{path}/prices?limit=2"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first_page["items"].as_array().unwrap().len(), 2);
    let cursor = first_page["next_cursor"].as_i64().unwrap();
    let rest: Value = app
        .get(&format!("{path}/prices?limit=2&cursor={cursor}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["unit_price"]["amount_minor"], 1000);
    assert!(rest["next_cursor"].is_null());
    assert_problem(
        app.get(&format!("/products/{}/prices", uuid::Uuid::now_v7()), None)
            .await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
}
