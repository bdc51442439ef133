"""Comments and social posts the simulated customers write, in five languages.

Negative comments are grouped by the issue topic they are about (the names of
``alerts/lexicons``), so an incident at the delivery touchpoint produces comments about
delivery in each customer's own language.
"""

from __future__ import annotations

LANGUAGES = ("en", "lt", "et", "pl", "ru")

NEGATIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery": {
        "en": ("My parcel never arrived and the tracking has not moved for days.",
               "The courier left without ringing, so I am still without my package."),
        "lt": ("Siuntinys taip ir neatkeliavo, kurjeris neatsiliepia.",
               "Pristatymas vėlavo tris dienas, niekas nieko nepranešė."),
        "et": ("Pakk ei jõudnud kohale ja kuller ei vasta telefonile.",
               "Tarne hilines kolm päeva, keegi ei teavitanud."),
        "pl": ("Paczka nie dotarła, a kurier nie odbiera telefonu.",
               "Dostawa spóźniła się o trzy dni i nikt mnie nie uprzedził."),
        "ru": ("Посылка так и не пришла, курьер не отвечает.",
               "Доставка задержалась на три дня, никто не предупредил."),
    },
    "waiting": {
        "en": ("I was on hold for forty minutes before anyone answered.",
               "The queue in the shop took forever."),
        "lt": ("Laukiau atsakymo beveik valandą.", "Eilėje stovėjau labai ilgai."),
        "et": ("Ootasin vastust peaaegu tund aega.", "Järjekord poes oli meeletult pikk."),
        "pl": ("Czekałem na połączenie prawie godzinę.", "Kolejka do kasy była ogromna."),
        "ru": ("Ждал ответа почти час.", "Очередь в магазине была огромная."),
    },
    "billing": {
        "en": ("I was charged twice for the same order.",
               "The invoice shows a fee I never agreed to."),
        "lt": ("Nuskaičiavo pinigus du kartus už tą patį užsakymą.",
               "Sąskaitoje atsirado mokestis, su kuriuo nesutikau."),
        "et": ("Makse võeti kontolt kaks korda.", "Arvel on tasu, millega ma ei nõustunud."),
        "pl": ("Pobrano opłatę dwukrotnie za to samo zamówienie.",
               "Na fakturze jest opłata, na którą się nie zgodziłem."),
        "ru": ("С карты дважды списали деньги за один заказ.",
               "В квитанции появилась оплата, на которую я не соглашался."),
    },
    "staff": {
        "en": ("The staff at the counter were rude and unhelpful.",),
        "lt": ("Darbuotojai buvo nemandagūs ir nepadėjo.",),
        "et": ("Teenindaja oli ebaviisakas ega aidanud.",),
        "pl": ("Obsługa była niemiła i nic nie pomogła.",),
        "ru": ("Сотрудник был груб и ничем не помог.",),
    },
    "website_app": {
        "en": ("The app crashes at login every time.",),
        "lt": ("Programėlė lūžta vos prisijungus.",),
        "et": ("Rakendus jookseb sisselogimisel kokku.",),
        "pl": ("Aplikacja wyłącza się przy logowaniu.",),
        "ru": ("Приложение вылетает при входе, ошибка за ошибкой.",),
    },
    "price": {
        "en": ("Far too expensive for what you get.",),
        "lt": ("Kaina per didelė už tokią kokybę.",),
        "et": ("Liiga kallis selle kvaliteedi eest.",),
        "pl": ("Ceny są za wysokie, za drogo jak na tę jakość.",),
        "ru": ("Слишком дорого за такое качество.",),
    },
}

POSITIVE: dict[str, tuple[str, ...]] = {
    "en": ("Quick and friendly, thank you!", "Everything worked as expected.",
           "Great service, I will come back."),
    "lt": ("Greitai ir maloniai, ačiū!", "Viskas veikė puikiai.", "Puikus aptarnavimas."),
    "et": ("Kiire ja sõbralik, aitäh!", "Kõik toimis hästi.", "Suurepärane teenindus."),
    "pl": ("Szybko i miło, dziękuję!", "Wszystko działało bez problemu.",
           "Świetna obsługa, polecam."),
    "ru": ("Быстро и вежливо, спасибо!", "Всё работало отлично.", "Отличный сервис."),
}

NEUTRAL: dict[str, tuple[str, ...]] = {
    "en": ("It was fine.", "Nothing special."),
    "lt": ("Buvo normaliai.", "Nieko ypatingo."),
    "et": ("Oli normaalne.", "Midagi erilist."),
    "pl": ("Było w porządku.", "Nic szczególnego."),
    "ru": ("Нормально.", "Ничего особенного."),
}

#: Angry public posts: complaint wording plus an issue
SOCIAL_ANGRY: dict[str, tuple[str, ...]] = {
    "en": ("Worst shop ever, never again! My parcel is lost and nobody cares.",
           "Terrible service, avoid this company."),
    "lt": ("Siaubingas aptarnavimas, niekada daugiau! Siuntinys dingo.",
           "Nusivyliau, nerekomenduoju šios parduotuvės."),
    "et": ("Kohutav teenindus, mitte kunagi enam! Pakk kadus ära.",
           "Halvim pood, ei soovita kellelegi."),
    "pl": ("Najgorszy sklep, nigdy więcej! Kurier zgubił paczkę.",
           "Fatalna obsługa, nie polecam."),
    "ru": ("Ужасный магазин, никогда больше! Посылку потеряли.",
           "Отвратительный сервис, не рекомендую."),
}

SOCIAL_HAPPY: dict[str, tuple[str, ...]] = {
    "en": ("Love the new app, ordering takes a minute.", "Parcel arrived early, nice!"),
    "lt": ("Nauja programėlė patogi, ačiū!", "Siuntinys atkeliavo anksčiau, puiku!"),
    "et": ("Uus rakendus on mugav, aitäh!", "Pakk jõudis varem kohale, super!"),
    "pl": ("Nowa aplikacja jest świetna!", "Paczka przyszła wcześniej, super!"),
    "ru": ("Новое приложение удобное, спасибо!", "Посылка пришла раньше срока, супер!"),
}
