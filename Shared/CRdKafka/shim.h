// librdkafka's public API plus its mock cluster (the dev broker). The mock header must follow rdkafka.h.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
