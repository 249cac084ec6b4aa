"""Tables behind the shopping-intent generator: catalog taxonomy, brands, attributes, phrasings per intent.

Templates use {slots}; generate_data.py fills them from the tables below. Keep every list in a fixed order:
the generator's output depends on it.
"""

CATEGORIES = {
    "apparel": ["t-shirt", "jeans", "hoodie", "jacket", "dress", "skirt", "sweater", "leggings", "coat", "polo shirt",
                "shorts", "pajamas", "swimsuit", "blazer", "socks"],
    "shoes": ["running shoes", "sneakers", "boots", "sandals", "heels", "loafers", "slippers", "hiking boots",
              "basketball shoes", "flip flops"],
    "electronics": ["laptop", "phone", "tablet", "headphones", "earbuds", "smart watch", "tv", "monitor",
                    "bluetooth speaker", "camera", "keyboard", "mouse", "charger", "power bank", "router"],
    "home": ["sofa", "desk lamp", "bed frame", "mattress", "curtains", "rug", "bookshelf", "office chair",
             "pillow", "duvet"],
    "kitchen": ["blender", "coffee maker", "air fryer", "frying pan", "knife set", "toaster", "kettle",
                "dinnerware set", "rice cooker", "stand mixer"],
    "beauty": ["lipstick", "moisturizer", "shampoo", "perfume", "sunscreen", "face serum", "hair dryer",
               "nail polish"],
    "toys": ["lego set", "board game", "doll", "puzzle", "rc car", "plush toy", "action figure"],
    "sports": ["yoga mat", "dumbbells", "tennis racket", "bike helmet", "treadmill", "football", "camping tent",
               "water bottle"],
    "grocery": ["coffee beans", "olive oil", "protein powder", "green tea", "pasta", "almond milk"],
    "pets": ["dog food", "cat litter", "dog leash", "cat tree", "pet bed"],
    "baby": ["stroller", "diapers", "car seat", "baby monitor"],
}
PRODUCTS = [p for items in CATEGORIES.values() for p in items]
CATEGORY_WORDS = ["electronics", "shoes", "womens clothing", "mens clothing", "kitchen appliances", "home decor",
                  "furniture", "beauty products", "toys", "sports gear", "groceries", "pet supplies",
                  "baby products", "outdoor gear", "office supplies", "kids clothes"]
BRANDS = ["nike", "adidas", "puma", "reebok", "new balance", "asics", "under armour", "levi's", "zara", "h&m",
          "uniqlo", "gap", "samsung", "apple", "sony", "lg", "dell", "hp", "lenovo", "asus", "bose", "jbl",
          "canon", "nikon", "logitech", "anker", "philips", "dyson", "ikea", "keurig", "ninja", "kitchenaid",
          "cuisinart", "le creuset", "l'oreal", "maybelline", "nivea", "dove", "lego", "hasbro", "mattel",
          "fisher-price", "coleman", "yeti", "garmin", "fitbit", "xiaomi", "huawei", "microsoft", "nintendo",
          "converse", "vans", "timberland", "crocs", "skechers", "columbia", "patagonia", "the north face",
          "ray-ban", "casio", "purina", "pampers", "graco", "lavazza", "nespresso", "oral-b"]
COLORS = ["red", "black", "white", "blue", "navy", "green", "pink", "grey", "beige", "brown", "yellow", "purple",
          "olive", "gold", "silver"]
MATERIALS = ["leather", "cotton", "wool", "linen", "denim", "suede", "stainless steel", "bamboo", "silk",
             "waterproof", "organic cotton", "cast iron"]
FEATURES = ["wireless", "noise cancelling", "waterproof", "slim fit", "oversized", "long sleeve", "high waisted",
            "4k", "gaming", "lightweight", "vegan", "usb-c", "foldable", "non-stick", "memory foam", "unisex",
            "vintage", "extra wide"]
SIZES = ["size 8", "size 10", "size 42", "xl", "xxl", "small", "medium", "large", "size 6.5", "us 9", "uk 7",
         "55 inch", "65 inch", "13 inch", "1tb", "256gb", "500ml", "1l", "2 pack", "queen size", "king size"]
AUDIENCE = ["men", "women", "kids", "boys", "girls", "toddlers", "teens", "seniors"]
PEOPLE = ["my mom", "my dad", "my wife", "my husband", "my girlfriend", "my boyfriend", "a coworker",
          "my boss", "my sister", "my brother", "a 5 year old", "a teenager", "my grandma", "a new dad",
          "my best friend", "a gamer", "a runner", "someone who loves cooking"]
OCCASIONS = ["birthday", "christmas", "anniversary", "mother's day", "father's day", "valentine's day",
             "graduation", "housewarming", "baby shower", "secret santa", "retirement", "wedding"]
CITIES = ["downtown", "brooklyn", "austin", "seattle", "chicago", "london", "manchester", "berlin", "denver",
          "san jose", "miami", "toronto", "the mall", "my area", "zip 94103", "near me"]
DAYS = ["yesterday", "last week", "on monday", "last tuesday", "3 days ago", "two weeks ago", "on friday",
        "this morning", "last month"]
PAYMENTS = ["paypal", "apple pay", "google pay", "klarna", "afterpay", "a gift card", "visa", "mastercard",
            "amex", "cash on delivery", "bank transfer", "crypto", "installments", "store credit"]
CARRIERS = ["ups", "fedex", "dhl", "usps", "royal mail", "the courier"]
COUNTRIES = ["canada", "the uk", "germany", "australia", "mexico", "france", "japan", "india", "alaska",
             "hawaii", "puerto rico"]

# intent -> phrasings. Slots: {product} {brand} {color} {material} {feature} {size} {audience} {price}
# {price2} {category} {person} {occasion} {city} {day} {order} {payment} {carrier} {country} {product2} {brand2}
TEMPLATES = {
    "product_search_category": [
        "{category}", "shop {category}", "show me {category}", "browse {category}", "{category} for {audience}",
        "new arrivals in {category}", "i'm looking for {category}", "{product}", "{product}s",
        "{product} for {audience}", "buy {product}", "looking for a {product}", "i need a new {product}",
        "where can i find {product}s", "best {product}", "top rated {product}", "show all {category}",
        "what {category} do you sell", "{category} section", "popular {product}s right now",
    ],
    "product_search_brand": [
        "{brand}", "{brand} {product}", "{brand} products", "show me {brand}", "do you carry {brand}",
        "all {brand} {category}", "{brand} {product} for {audience}", "new {brand} collection",
        "i want {brand} {product}s", "anything from {brand}", "{brand} store", "latest {brand} {product}",
        "{brand} official", "shop {brand}", "do you sell {brand} stuff", "{brand} outlet items",
    ],
    "product_search_attribute": [
        "{color} {product}", "{material} {product}", "{feature} {product}", "{product} {size}",
        "{color} {product} {size}", "{feature} {color} {product}", "{product} in {color}",
        "{product} made of {material}", "{color} {material} {product} for {audience}",
        "{product} with {feature}", "do you have the {product} in {size}", "{size} {color} {product}",
        "{brand} {product} {color} {size}", "{feature} {product} for {audience}", "{material} {color} {product}",
        "i need a {color} {product} in {size}",
    ],
    "product_search_price": [
        "{product} under {price}", "{product} under ${price}", "cheap {product}", "{product} below {price} dollars",
        "{product} between ${price} and ${price2}", "{product} {price}-{price2}", "budget {product}",
        "{product} less than {price} bucks", "affordable {product} for {audience}", "{brand} {product} under {price}",
        "cheapest {product}", "{color} {product} under ${price}", "{product} for under {price}",
        "{product} max {price} euros", "{product} around {price} pounds", "best {product} for the money",
        "inexpensive {category}", "{product} price range {price} to {price2}",
    ],
    "compare_products": [
        "{brand} vs {brand2}", "{brand} {product} vs {brand2} {product}", "compare {product} and {product2}",
        "{product} or {product2} which is better", "difference between {brand} and {brand2} {product}",
        "compare {brand} {product} models", "which {product} should i buy {brand} or {brand2}",
        "side by side comparison of {product}s", "is the {brand} {product} better than the {brand2} one",
        "{brand} vs {brand2} for {audience}", "compare prices of {product}s", "pros and cons {brand} {product}",
        "what's the difference between these two {product}s", "{product} comparison chart",
    ],
    "deals_coupons": [
        "coupon code", "any discount codes", "{brand} coupon", "deals on {product}", "{category} sale",
        "promo code for {category}", "black friday deals", "is there a sale on {product}s",
        "discount for students", "today's deals", "clearance {category}", "flash sale", "voucher code not working",
        "do you have any coupons for first order", "buy one get one free", "{percent}% off {product}",
        "where are the {brand} deals", "best deals this week", "cyber monday {product}", "outlet deals",
    ],
    "order_status": [
        "where is my order", "order status", "track my order", "track order {order}", "where's my package",
        "has my order shipped", "order {order} status", "my parcel hasn't arrived", "when will my order arrive",
        "tracking number for order {order}", "i ordered a {product} {day} and it still hasn't come",
        "is my {product} on the way", "where is my {brand} order", "delivery status", "order {order}",
        "my package says delivered but i didn't get it", "why is my order late", "{carrier} tracking not updating",
        "hi can you tell me where my package is i ordered it {day}", "shipment status {order}",
    ],
    "order_cancel": [
        "cancel my order", "cancel order {order}", "how do i cancel an order", "i want to cancel my purchase",
        "stop my order", "can i still cancel the {product} i bought {day}", "cancel {order}",
        "change my mind cancel order", "cancel the subscription order", "i ordered by mistake please cancel",
        "how to cancel an order that already shipped", "cancel one item from my order", "undo my order",
        "cancel my {brand} order",
    ],
    "returns_refunds": [
        "return policy", "how do i return an item", "return my {product}", "refund status", "i want a refund",
        "return {product} {size} too small", "where is my refund", "start a return for order {order}",
        "how long do refunds take", "return label", "can i return a {product} without receipt",
        "exchange {product} for a different size", "refund for damaged {product}", "the {product} is broken i want my money back",
        "free returns", "return window for {category}", "my refund hasn't shown up", "send back {brand} {product}",
    ],
    "shipping_info": [
        "shipping cost", "how much is shipping", "free shipping", "do you ship to {country}", "delivery time",
        "express shipping", "next day delivery", "how long does shipping take to {country}",
        "international shipping", "shipping options", "same day delivery in {city}", "do you deliver on weekends",
        "free shipping minimum", "which courier do you use", "can i get it by {occasion}",
        "is shipping free over ${price}", "do you ship {product}s to {country}", "shipping rates to {country}",
    ],
    "payment_methods": [
        "can i pay with {payment}", "do you accept {payment}", "payment options", "pay in installments",
        "buy now pay later", "my card was declined", "payment failed", "is {payment} accepted",
        "how do i use {payment}", "why was i charged twice", "update payment method", "payment methods available",
        "can i split payment", "checkout won't accept my card", "pay with {payment} at checkout",
        "was my payment successful",
    ],
    "account_help": [
        "reset password", "forgot my password", "can't log in", "change my email", "delete my account",
        "update my address", "create an account", "my account is locked", "change username",
        "how do i update my shipping address", "login not working", "two factor authentication",
        "sign up", "unsubscribe from emails", "change phone number on account", "where are my account settings",
        "i didn't get the verification code",
    ],
    "store_locator": [
        "store near me", "stores in {city}", "nearest store", "store hours", "is the {city} store open",
        "opening hours {city}", "find a store", "store locator", "what time does the store close",
        "is there a shop in {city}", "store address {city}", "are you open on sunday", "directions to your store",
        "holiday opening hours", "closest {brand} store", "pick up in store {city}",
    ],
    "size_help": [
        "size chart", "what size should i get", "size guide for {product}", "does the {product} run small",
        "{brand} size chart", "i'm usually a {size} what size in {brand}", "how does the {product} fit",
        "are {brand} {product}s true to size", "size conversion uk to us", "measurements for {size}",
        "which size for {audience}", "fit guide {product}", "is {size} too big", "sizing help",
        "how to measure for a {product}",
    ],
    "gift_ideas": [
        "gift for {person}", "gift ideas for {person}", "{occasion} gift", "{occasion} gifts for {person}",
        "what to buy {person} for {occasion}", "present for {person} under ${price}", "gift ideas",
        "gifts under {price}", "{occasion} present ideas", "unique gift for {person}", "gift card",
        "what do i get {person}", "last minute {occasion} gifts", "gift for {person} who has everything",
        "stocking stuffers", "{occasion} gift for {person} who likes {category}",
    ],
    "product_reviews": [
        "{brand} {product} reviews", "reviews for {product}", "is the {brand} {product} good",
        "what do people say about {brand} {product}", "{product} ratings", "customer reviews {product}",
        "is this {product} worth it", "best reviewed {product}", "{brand} {product} review",
        "how many stars does the {product} have", "any complaints about {brand} {product}s",
        "read reviews {product}", "honest opinions on {brand} {product}", "is {brand} a good brand",
    ],
    "stock_availability": [
        "is the {product} in stock", "{brand} {product} in stock", "when will {product} be back in stock",
        "out of stock", "is {size} available", "do you have {color} {product} in stock",
        "notify me when available", "{product} availability in {city}", "check stock {product}",
        "restock date {brand} {product}", "is it available in store", "any {product} left in {size}",
        "sold out {product}", "back in stock alert",
    ],
    "warranty_support": [
        "warranty", "warranty for {product}", "my {product} stopped working", "{brand} {product} is broken",
        "how do i claim warranty", "is my {product} still under warranty", "repair my {product}",
        "extended warranty", "{product} won't turn on", "defective {product}", "warranty period {brand}",
        "technical support for {product}", "my {brand} {product} screen cracked", "warranty claim {order}",
        "replace faulty {product}",
    ],
    "price_match": [
        "price match", "do you price match", "i found it cheaper elsewhere", "price match {brand} {product}",
        "{product} is cheaper on another site", "price adjustment", "price dropped after i bought it",
        "refund the difference price drop", "do you match competitor prices", "price guarantee",
        "can you match this price ${price}", "the price went down can i get the difference",
        "price match policy",
    ],
    "loyalty_rewards": [
        "rewards points", "how many points do i have", "loyalty program", "redeem points", "membership benefits",
        "join rewards", "my points balance", "points expired", "vip membership", "how do i earn points",
        "use reward points on {product}", "rewards card", "member discount", "birthday reward",
        "points not added for order {order}",
    ],
    "customer_service_contact": [
        "talk to a human", "customer service", "contact support", "phone number", "live chat",
        "speak to an agent", "email customer service", "call me back", "how do i contact you",
        "i need to talk to someone", "customer service hours", "agent please", "representative",
        "file a complaint", "support chat not working", "connect me to a real person",
    ],
    "out_of_scope": [
        "what's the weather today", "weather in {city}", "tell me a joke", "who won the game last night",
        "what time is it", "how tall is mount everest", "play some music", "what's the capital of {country}",
        "recipe for pancakes", "how do i boil an egg", "news today", "translate hello to spanish",
        "who is the president", "set an alarm for 7", "how far is the moon", "what's 15 times 4",
        "football scores", "good movies to watch", "how to lose weight", "what is the meaning of life",
        "are you a robot", "sing me a song", "book a flight to {country}", "what's the stock price of {brand}",
    ],
}

# Polite or chatty wrappers that make long natural queries; {q} is the core query.
WRAPPERS = [
    "{q}", "{q}", "{q}", "{q}", "{q}", "{q}", "{q}?", "{q}?", "{q} please", "hi, {q}", "hey {q}",
    "can you help me, {q}", "quick question: {q}", "i was wondering {q}", "{q} thanks", "hello! {q}?",
    "um {q}", "{q} asap", "please help {q}", "excuse me, {q}",
]
