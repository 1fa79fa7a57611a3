"""The names of MongoDB's operators, as listed in the MongoDB 8 manual.

Only names live here; which of them a filter may use is decided in
:mod:`boom_tasks.filter.validate`. The sets exist so that a misspelt operator
(``$gte`` typed as ``$gtE``, ``$exist``) is refused when the filter is saved: the
server would reject it too, but only once the filter runs on live alerts.

Variables (``$$ROOT``, ``$$this``) and field paths (``"$candidate.magpsf"``) are
values, not operators, and never appear here.
"""

from __future__ import annotations

#: Aggregation pipeline stages (``db.collection.aggregate``), Atlas-only ones included.
STAGE_OPERATORS = frozenset(
    {
        "$addFields",
        "$bucket",
        "$bucketAuto",
        "$changeStream",
        "$changeStreamSplitLargeEvent",
        "$collStats",
        "$count",
        "$currentOp",
        "$densify",
        "$documents",
        "$facet",
        "$fill",
        "$geoNear",
        "$graphLookup",
        "$group",
        "$indexStats",
        "$limit",
        "$listClusterCatalog",
        "$listLocalSessions",
        "$listSampledQueries",
        "$listSearchIndexes",
        "$listSessions",
        "$lookup",
        "$match",
        "$merge",
        "$out",
        "$planCacheStats",
        "$project",
        "$querySettings",
        "$queryStats",
        "$rankFusion",
        "$redact",
        "$replaceRoot",
        "$replaceWith",
        "$sample",
        "$scoreFusion",
        "$search",
        "$searchMeta",
        "$set",
        "$setWindowFields",
        "$shardedDataDistribution",
        "$skip",
        "$sort",
        "$sortByCount",
        "$unionWith",
        "$unset",
        "$unwind",
        "$vectorSearch",
    }
)

#: Query predicates (``$match``, ``find``), with the modifiers of $regex, $text and geo queries.
QUERY_OPERATORS = frozenset(
    {
        # comparison
        "$eq",
        "$gt",
        "$gte",
        "$in",
        "$lt",
        "$lte",
        "$ne",
        "$nin",
        # logical
        "$and",
        "$nor",
        "$not",
        "$or",
        # element
        "$exists",
        "$type",
        # evaluation
        "$expr",
        "$jsonSchema",
        "$mod",
        "$options",
        "$regex",
        "$sampleRate",
        "$text",
        "$where",
        # text search modifiers, inside $text
        "$caseSensitive",
        "$diacriticSensitive",
        "$language",
        "$search",
        # geospatial, with their shape and distance modifiers
        "$box",
        "$center",
        "$centerSphere",
        "$geoIntersects",
        "$geoWithin",
        "$geometry",
        "$maxDistance",
        "$minDistance",
        "$near",
        "$nearSphere",
        "$polygon",
        "$uniqueDocs",
        # array
        "$all",
        "$elemMatch",
        "$size",
        # bitwise
        "$bitsAllClear",
        "$bitsAllSet",
        "$bitsAnyClear",
        "$bitsAnySet",
        # miscellaneous
        "$comment",
        "$rand",
        # projection operators
        "$meta",
        "$slice",
    }
)

#: Aggregation expression operators ($addFields, $project, $expr, ...).
EXPRESSION_OPERATORS = frozenset(
    {
        # arithmetic
        "$abs",
        "$add",
        "$ceil",
        "$divide",
        "$exp",
        "$floor",
        "$ln",
        "$log",
        "$log10",
        "$mod",
        "$multiply",
        "$pow",
        "$round",
        "$sqrt",
        "$subtract",
        "$trunc",
        # array
        "$arrayElemAt",
        "$arrayToObject",
        "$concatArrays",
        "$filter",
        "$first",
        "$firstN",
        "$in",
        "$indexOfArray",
        "$isArray",
        "$last",
        "$lastN",
        "$map",
        "$maxN",
        "$minN",
        "$objectToArray",
        "$range",
        "$reduce",
        "$reverseArray",
        "$size",
        "$slice",
        "$sortArray",
        "$zip",
        # bitwise
        "$bitAnd",
        "$bitNot",
        "$bitOr",
        "$bitXor",
        # boolean
        "$and",
        "$not",
        "$or",
        # comparison
        "$cmp",
        "$eq",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$ne",
        # conditional
        "$cond",
        "$ifNull",
        "$switch",
        # custom (server-side JavaScript)
        "$accumulator",
        "$function",
        # data size
        "$binarySize",
        "$bsonSize",
        # date
        "$dateAdd",
        "$dateDiff",
        "$dateFromParts",
        "$dateFromString",
        "$dateSubtract",
        "$dateToParts",
        "$dateToString",
        "$dateTrunc",
        "$dayOfMonth",
        "$dayOfWeek",
        "$dayOfYear",
        "$hour",
        "$isoDayOfWeek",
        "$isoWeek",
        "$isoWeekYear",
        "$millisecond",
        "$minute",
        "$month",
        "$second",
        "$week",
        "$year",
        # literal, miscellaneous, object, variable
        "$getField",
        "$let",
        "$literal",
        "$mergeObjects",
        "$rand",
        "$sampleRate",
        "$setField",
        "$toHashedIndexKey",
        "$unsetField",
        # set
        "$allElementsTrue",
        "$anyElementTrue",
        "$setDifference",
        "$setEquals",
        "$setIntersection",
        "$setIsSubset",
        "$setUnion",
        # string
        "$concat",
        "$indexOfBytes",
        "$indexOfCP",
        "$ltrim",
        "$regexFind",
        "$regexFindAll",
        "$regexMatch",
        "$replaceAll",
        "$replaceOne",
        "$rtrim",
        "$split",
        "$strcasecmp",
        "$strLenBytes",
        "$strLenCP",
        "$substr",
        "$substrBytes",
        "$substrCP",
        "$toLower",
        "$toUpper",
        "$trim",
        # text, timestamp
        "$meta",
        "$tsIncrement",
        "$tsSecond",
        # trigonometry
        "$acos",
        "$acosh",
        "$asin",
        "$asinh",
        "$atan",
        "$atan2",
        "$atanh",
        "$cos",
        "$cosh",
        "$degreesToRadians",
        "$radiansToDegrees",
        "$sin",
        "$sinh",
        "$tan",
        "$tanh",
        # type
        "$convert",
        "$isNumber",
        "$toBool",
        "$toDate",
        "$toDecimal",
        "$toDouble",
        "$toInt",
        "$toLong",
        "$toObjectId",
        "$toString",
        "$toUUID",
        "$type",
    }
)

#: Accumulators ($group, $bucket, $setWindowFields; some also work as expressions).
ACCUMULATOR_OPERATORS = frozenset(
    {
        "$accumulator",
        "$addToSet",
        "$avg",
        "$bottom",
        "$bottomN",
        "$count",
        "$first",
        "$firstN",
        "$last",
        "$lastN",
        "$max",
        "$maxN",
        "$median",
        "$mergeObjects",
        "$min",
        "$minN",
        "$percentile",
        "$push",
        "$stdDevPop",
        "$stdDevSamp",
        "$sum",
        "$top",
        "$topN",
    }
)

#: Window operators, only meaningful inside $setWindowFields.
WINDOW_OPERATORS = frozenset(
    {
        "$covariancePop",
        "$covarianceSamp",
        "$denseRank",
        "$derivative",
        "$documentNumber",
        "$expMovingAvg",
        "$integral",
        "$linearFill",
        "$locf",
        "$rank",
        "$shift",
    }
)

#: Every operator name MongoDB knows; a ``$`` key outside this set is a typo.
KNOWN_OPERATORS = (
    STAGE_OPERATORS
    | QUERY_OPERATORS
    | EXPRESSION_OPERATORS
    | ACCUMULATOR_OPERATORS
    | WINDOW_OPERATORS
)
