-- One database per service (docker-compose only; the services migrate them).
CREATE DATABASE oms_order;
CREATE DATABASE oms_inventory;
CREATE DATABASE oms_customer;
